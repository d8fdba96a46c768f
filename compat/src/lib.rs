//! Nothing but a home for `tests/toxiproxy_rust.rs`: a third-party Toxiproxy client
//! driving tether's fault proxy (and a real `toxiproxy-server` where one is on PATH).
//! It lives in a crate of its own because that client brings reqwest 0.11 and OpenSSL,
//! which tether itself does not need.
