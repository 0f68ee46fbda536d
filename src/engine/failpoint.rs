//! Failpoints for crash tests. Built with the `failpoints` feature, a
//! failpoint named in `FAILPOINTS` with the action `return(kill)` stops the
//! process with SIGKILL on the spot, as a crash or an OOM kill would. In
//! other builds every failpoint compiles to nothing.

/// Passes the failpoint `name`.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    fail::eval(name, |action| {
        if action.as_deref() == Some("kill") {
            let me = rustix::process::getpid();
            let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
        }
    });
}

/// Passes the failpoint `name`: a no-op in builds without `failpoints`.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Reads `FAILPOINTS` once at start. The returned guard keeps them active.
#[cfg(feature = "failpoints")]
pub fn setup() -> Option<fail::FailScenario<'static>> {
    Some(fail::FailScenario::setup())
}

/// Reads `FAILPOINTS` once at start: nothing to read without `failpoints`.
#[cfg(not(feature = "failpoints"))]
pub fn setup() -> Option<()> {
    None
}
