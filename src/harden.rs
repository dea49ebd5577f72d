//! Process hardening while key material is held: no core dumps, not ptrace-attachable by peers.

/// Switches core dumps off (RLIMIT_CORE = 0) and, on Linux, marks the process non-dumpable
/// (PR_SET_DUMPABLE 0), which also stops other processes of the same user from attaching with
/// ptrace and from reading /proc/PID/mem. Returns what could not be done, for `--verbose`.
pub fn protect_process() -> Vec<String> {
    let mut problems = Vec::new();
    let zero = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Core, zero) {
        problems.push(format!("could not set RLIMIT_CORE to 0: {e}"));
    }
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        problems.push(format!("could not clear the dumpable flag: {e}"));
    }
    problems
}

#[cfg(test)]
mod tests {
    #[test]
    fn core_limit_is_zero_after_protect() {
        assert!(super::protect_process().is_empty());
        let lim = rustix::process::getrlimit(rustix::process::Resource::Core);
        assert_eq!(lim.current, Some(0));
        assert_eq!(lim.maximum, Some(0));
    }
}
