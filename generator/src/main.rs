//! `umm-generator`: the systemd generator; under the name `umm-init` (or as
//! PID 1) the pre-stage for sysvinit/upstart boots. Only dispatches.
//!
//! It has its own C `main` instead of Rust's: std's start-up asks for the
//! main thread's stack bounds to set up a stack-overflow guard, which on glibc
//! means reading and `sscanf`-parsing `/proc/self/maps` and on musl probing
//! with `mremap` (a fifth of the generator's instructions, docs/benchmarks.md).
//! What std's start-up does that matters here is done in [`startup`]; the
//! only thing given up is the "has overflowed its stack" message (a stack
//! overflow is a plain SIGSEGV; nothing here recurses beyond the TOML parser
//! on root-owned files).
#![cfg_attr(not(test), no_main)]

/// A line on stderr that never panics (eprintln! does when stderr is
/// closed, and at boot it may be).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
pub(crate) use say;

mod arena;
mod generate;
mod shim;

/// A bump arena: a few instructions per allocation, no system call
/// (generator/src/arena.rs).
#[global_allocator]
static ALLOC: arena::Arena = arena::Arena::new();

use std::ffi::OsString;
use std::path::Path;

/// The C entry point (the release build links statically, see
/// docs/benchmarks.md; argc/argv are taken from here because std only finds
/// them itself on glibc).
///
/// # Safety
/// Called by the C runtime with a valid `argv` of `argc` NUL-terminated
/// strings.
#[cfg(not(test))]
#[no_mangle]
pub unsafe extern "C" fn main(
    argc: std::os::raw::c_int,
    argv: *const *const std::os::raw::c_char,
) -> std::os::raw::c_int {
    use std::os::unix::ffi::OsStringExt;
    startup();
    let n = usize::try_from(argc).unwrap_or(0);
    let mut args = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: the C runtime passes argc valid pointers.
        let p = unsafe { *argv.add(i) };
        if p.is_null() {
            break;
        }
        // SAFETY: each is a NUL-terminated string.
        args.push(OsString::from_vec(
            unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes().to_vec(),
        ));
    }
    // What std's runtime does with a panic that reaches main: exit 101 (a
    // panic must not unwind into C).
    std::panic::catch_unwind(|| dispatch(&args)).map_or(101, std::os::raw::c_int::from)
}

/// The part of std's start-up that matters to PID 1 and a generator:
/// file descriptors 0-2 that are closed are opened on `/dev/null` (so no file
/// opened later becomes "stderr"), and SIGPIPE is ignored (writes to a closed
/// pipe fail with EPIPE instead of killing the process). `shim::exec` restores
/// SIGPIPE's default for the real init, as std's `Command` did.
#[cfg(not(test))]
fn startup() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: plain syscalls on a local array and a static string.
    unsafe {
        if libc::poll(fds.as_mut_ptr(), 3, 0) != -1 {
            for p in &fds {
                if p.revents & libc::POLLNVAL != 0 {
                    // The lowest free descriptor: the closed one. Unlike
                    // std, no abort when /dev/null is missing (PID 1 must
                    // go on).
                    libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                }
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

#[cfg_attr(test, allow(dead_code))]
fn dispatch(args: &[OsString]) -> u8 {
    let called_as_init = args
        .first()
        .and_then(|a0| Path::new(a0).file_name())
        .is_some_and(|n| n == "umm-init");
    // The dracut pre-pivot hook; never taken as PID 1, where the arguments
    // come from the kernel command line.
    if args.get(1).is_some_and(|a| a == "--initrd-decide") && std::process::id() != 1 {
        let sysroot = args
            .get(2)
            .map_or("/sysroot".into(), std::path::PathBuf::from);
        return shim::initrd_decide(&sysroot);
    }
    if called_as_init || std::process::id() == 1 {
        shim::main(args)
    } else {
        generate::main(args)
    }
}
