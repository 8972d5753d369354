//! The `meridian` command: flags only; the work is in the library.

/// mimalloc hands freed memory back to the system page by page; glibc's
/// malloc kept most of a big zone's load and reload garbage (issue 26).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    meridian::cli::main()
}
