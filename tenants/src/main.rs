//! `tenants`: the ops CLI. All logic is in the library.

fn main() -> std::process::ExitCode {
    tenants::cli::main()
}
