//! The `rollcall` binary: everything lives in the library.

/// Imports allocate and free millions of small strings; mimalloc does that
/// markedly faster than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rollcall::cli::main()
}
