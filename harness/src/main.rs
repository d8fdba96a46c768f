//! The `tether` binary: see [`tether::cli`].

fn main() {
    std::process::exit(tether::cli::main());
}
