//! What each API endpoint does to the server's proxies and toxics.

use super::State;
use super::api::{
    Answer, ApiError, CreateProxy, CreateToxic, UpdateProxy, UpdateToxic, json_response,
    no_content, parse_body,
};
use super::proxy::ProxyEntry;
use super::toxics::{TOXIC_TYPES, canonical_attributes, parse_kind, parse_stream, parse_toxicity};
use crate::faults::client::{Proxy, Toxic};
use crate::faults::populate::{ProxySpec, parse_proxy_list};
use hyper::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

impl State {
    /// `GET /proxies`: every proxy, by name.
    pub(super) async fn list_proxies(&self) -> Result<Answer, ApiError> {
        let proxies = self.proxies.lock().await;
        let all: BTreeMap<&str, Proxy> = proxies
            .iter()
            .map(|(name, entry)| (name.as_str(), entry.to_api()))
            .collect();
        Ok(json_response(StatusCode::OK, &all))
    }

    /// `POST /proxies`: creates a proxy and, unless `enabled` is false, starts it.
    pub(super) async fn create_proxy(&self, body: &[u8]) -> Result<Answer, ApiError> {
        let input: CreateProxy = parse_body(body)?;
        for (field, value) in [
            ("name", &input.name),
            ("listen", &input.listen),
            ("upstream", &input.upstream),
        ] {
            if value.is_empty() {
                return Err(ApiError::missing_field(field));
            }
        }

        let mut proxies = self.proxies.lock().await;
        if proxies.contains_key(&input.name) {
            return Err(ApiError::new(StatusCode::CONFLICT, "proxy already exists"));
        }
        let mut entry = ProxyEntry::new(
            input.name.clone(),
            resolve_listen(&input.listen).await?,
            input.upstream,
            self.seed,
        );
        if input.enabled {
            // A proxy that cannot listen is not created.
            entry.start().await?;
        }
        let proxy = entry.to_api();
        proxies.insert(input.name, entry);
        Ok(json_response(StatusCode::CREATED, &proxy))
    }

    /// `GET /proxies/{proxy}`.
    pub(super) async fn show_proxy(&self, name: &str) -> Result<Answer, ApiError> {
        let proxies = self.proxies.lock().await;
        let entry = proxies.get(name).ok_or_else(ApiError::proxy_not_found)?;
        Ok(json_response(StatusCode::OK, &entry.to_api()))
    }

    /// `POST /proxies/{proxy}`: enables or disables the proxy, or moves it to a
    /// new `listen` / `upstream` (restarting it, which closes its connections).
    pub(super) async fn update_proxy(&self, name: &str, body: &[u8]) -> Result<Answer, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let input: UpdateProxy = parse_body(body)?;

        // Only a real change of address counts; "127.0.0.1:0" always moves.
        let listen = match input.listen {
            Some(listen) if !listen.is_empty() && listen != entry.listen => {
                Some(resolve_listen(&listen).await?)
            }
            _ => None,
        };
        let upstream = input
            .upstream
            .filter(|upstream| !upstream.is_empty() && *upstream != entry.upstream);
        let enabled = input.enabled.unwrap_or(entry.enabled);

        if listen.is_some() || upstream.is_some() || !enabled {
            entry.stop().await;
        }
        if let Some(listen) = listen {
            entry.listen = listen;
        }
        if let Some(upstream) = upstream {
            entry.upstream = upstream;
        }
        if enabled {
            entry.start().await?;
        }
        Ok(json_response(StatusCode::OK, &entry.to_api()))
    }

    /// `DELETE /proxies/{proxy}`: stops and forgets the proxy.
    pub(super) async fn delete_proxy(&self, name: &str) -> Result<Answer, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let mut entry = proxies.remove(name).ok_or_else(ApiError::proxy_not_found)?;
        entry.stop().await;
        Ok(no_content())
    }

    /// `GET /proxies/{proxy}/toxics`.
    pub(super) async fn list_toxics(&self, name: &str) -> Result<Answer, ApiError> {
        let proxies = self.proxies.lock().await;
        let entry = proxies.get(name).ok_or_else(ApiError::proxy_not_found)?;
        Ok(json_response(StatusCode::OK, &entry.toxics))
    }

    /// `POST /proxies/{proxy}/toxics`: adds a toxic, also to open connections.
    pub(super) async fn create_toxic(&self, name: &str, body: &[u8]) -> Result<Answer, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let input: CreateToxic = parse_body(body)?;

        // Checked in Toxiproxy's order: stream, type, name clash, attributes.
        let stream = parse_stream(input.stream.as_deref().unwrap_or("downstream"))?;
        if !TOXIC_TYPES.contains(&input.kind.as_str()) {
            return Err(ApiError::invalid_toxic_type());
        }
        let toxic_name = if input.name.is_empty() {
            format!("{}_{}", input.kind, stream)
        } else {
            input.name
        };
        if entry.toxics.iter().any(|toxic| toxic.name == toxic_name) {
            return Err(ApiError::new(StatusCode::CONFLICT, "toxic already exists"));
        }
        let kind = parse_kind(&input.kind, &input.attributes)?;

        let toxic = Toxic {
            name: toxic_name,
            kind: input.kind,
            stream: stream.to_string(),
            toxicity: parse_toxicity(input.toxicity, 1.0)?,
            attributes: canonical_attributes(&kind),
        };
        entry.toxics.push(toxic.clone());
        entry.changed(&toxic.name);
        Ok(json_response(StatusCode::OK, &toxic))
    }

    /// `GET /proxies/{proxy}/toxics/{toxic}`.
    pub(super) async fn show_toxic(
        &self,
        name: &str,
        toxic_name: &str,
    ) -> Result<Answer, ApiError> {
        let proxies = self.proxies.lock().await;
        let entry = proxies.get(name).ok_or_else(ApiError::proxy_not_found)?;
        let toxic = entry
            .toxics
            .iter()
            .find(|toxic| toxic.name == toxic_name)
            .ok_or_else(ApiError::toxic_not_found)?;
        Ok(json_response(StatusCode::OK, toxic))
    }

    /// `POST /proxies/{proxy}/toxics/{toxic}`: changes attributes and/or toxicity.
    pub(super) async fn update_toxic(
        &self,
        name: &str,
        toxic_name: &str,
        body: &[u8],
    ) -> Result<Answer, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let current = entry
            .toxics
            .iter_mut()
            .find(|toxic| toxic.name == toxic_name)
            .ok_or_else(ApiError::toxic_not_found)?;
        let input: UpdateToxic = parse_body(body)?;

        // Merge the given attributes over the current ones, then re-validate.
        let mut attributes = current.attributes.clone();
        match (&mut attributes, input.attributes) {
            (_, None | Some(Value::Null)) => {}
            (Value::Object(current), Some(Value::Object(given))) => current.extend(given),
            _ => return Err(ApiError::bad_body("attributes must be an object")),
        }
        let kind = parse_kind(&current.kind, &attributes)?;
        let updated = Toxic {
            attributes: canonical_attributes(&kind),
            toxicity: parse_toxicity(input.toxicity, current.toxicity)?,
            ..current.clone()
        };
        *current = updated.clone();
        entry.changed(&updated.name);
        Ok(json_response(StatusCode::OK, &updated))
    }

    /// `DELETE /proxies/{proxy}/toxics/{toxic}`: removes it, also from open connections.
    pub(super) async fn delete_toxic(
        &self,
        name: &str,
        toxic_name: &str,
    ) -> Result<Answer, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies
            .get_mut(name)
            .ok_or_else(ApiError::proxy_not_found)?;
        let index = entry
            .toxics
            .iter()
            .position(|toxic| toxic.name == toxic_name)
            .ok_or_else(ApiError::toxic_not_found)?;
        let removed = entry.toxics.remove(index);
        entry.changed(&removed.name);
        Ok(no_content())
    }

    /// `POST /reset`: removes every toxic and enables every proxy.
    ///
    /// Goes through all proxies even if one fails, then answers the first error.
    pub(super) async fn reset(&self) -> Result<Answer, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let mut first_error = None;
        for entry in proxies.values_mut() {
            entry.clear_toxics();
            if let Err(err) = entry.start().await {
                first_error.get_or_insert(err);
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(no_content()),
        }
    }

    /// `POST /populate`: creates or replaces every proxy of a JSON list.
    ///
    /// Answers 201 `{"proxies": [...]}`; an error answer also lists the
    /// proxies applied before the error (none when the list was bad).
    pub(super) async fn populate(&self, body: &[u8]) -> Answer {
        let applied = match parse_proxy_list(body) {
            Ok(specs) => self.apply_specs(specs).await,
            Err(message) => Err((ApiError::new(StatusCode::BAD_REQUEST, message), Vec::new())),
        };
        match applied {
            Ok(proxies) => json_response(StatusCode::CREATED, &json!({ "proxies": proxies })),
            Err((err, proxies)) => json_response(
                err.status,
                &json!({
                    "error": err.message,
                    "status": err.status.as_u16(),
                    "proxies": proxies,
                }),
            ),
        }
    }

    /// Creates each proxy of `specs`, or replaces the proxy of that name if its
    /// `listen` or `upstream` differ (a proxy that is already the same is kept,
    /// toxics and all). Every `listen` is resolved before anything changes.
    /// On error, returns it with the proxies applied before it.
    pub(super) async fn apply_specs(
        &self,
        specs: Vec<ProxySpec>,
    ) -> Result<Vec<Proxy>, (ApiError, Vec<Proxy>)> {
        let mut resolved = Vec::with_capacity(specs.len());
        for spec in specs {
            let listen = resolve_listen(&spec.listen)
                .await
                .map_err(|err| (err, Vec::new()))?;
            resolved.push((spec, listen));
        }

        let mut proxies = self.proxies.lock().await;
        let mut applied = Vec::with_capacity(resolved.len());
        for (spec, listen) in resolved {
            if let Some(existing) = proxies.get_mut(&spec.name) {
                if existing.listen == listen && existing.upstream == spec.upstream {
                    applied.push(existing.to_api());
                    continue;
                }
                // Replaced: if the new one cannot start, the old one stays, disabled.
                existing.stop().await;
            }
            let mut entry = ProxyEntry::new(spec.name.clone(), listen, spec.upstream, self.seed);
            if spec.enabled
                && let Err(err) = entry.start().await
            {
                return Err((err, applied));
            }
            applied.push(entry.to_api());
            proxies.insert(spec.name, entry);
        }
        Ok(applied)
    }

    /// Stops every proxy (at shutdown).
    pub(super) async fn stop_all(&self) {
        let mut proxies = self.proxies.lock().await;
        for entry in proxies.values_mut() {
            entry.stop().await;
        }
    }
}

/// Resolves a `listen` address to `ip:port`; a port of 0 stays 0 until the
/// proxy binds it.
async fn resolve_listen(listen: &str) -> Result<String, ApiError> {
    // Go's ":8474" means all interfaces.
    let listen = if listen.starts_with(':') {
        format!("0.0.0.0{listen}")
    } else {
        listen.to_owned()
    };
    let invalid = |reason: String| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid listen address {listen:?}: {reason}"),
        )
    };
    let addr = tokio::net::lookup_host(listen.as_str())
        .await
        .map_err(|err| invalid(err.to_string()))?
        .next()
        .ok_or_else(|| invalid("no address".to_owned()))?;
    Ok(addr.to_string())
}
