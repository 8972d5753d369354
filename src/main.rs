//! The `meridian` command: flags only; the work is in the library.

fn main() -> std::process::ExitCode {
    meridian::cli::main()
}
