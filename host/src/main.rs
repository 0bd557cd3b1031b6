//! The `klar` binary: everything lives in the library (`klar::cli`).

fn main() -> std::process::ExitCode {
    klar::cli::main()
}
