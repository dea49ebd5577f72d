//! Messages for people, on stderr: progress only when stderr is a terminal, data never here.

use super::GlobalArgs;
use std::io::{IsTerminal, Write};

/// How chatty to be on stderr.
#[derive(Debug, Clone)]
pub struct Ui {
    quiet: bool,
    verbose: bool,
    progress: bool,
    color: bool,
}

/// Colour `error:`/`warning:` as clap does: only on a terminal, never with NO_COLOR set
/// (no-color.org), always with CLICOLOR_FORCE.
fn stderr_color() -> bool {
    let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
    if set("NO_COLOR") {
        return false;
    }
    set("CLICOLOR_FORCE")
        || (std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb"))
}

/// `msg` with anything that could drive a terminal written as a visible escape (`\u{1b}`): the
/// last line of defence for text a remote or an input put into a message (an ARN, a version id,
/// a name from a server). Line breaks and tabs are kept (messages have several lines); text from
/// a remote is escaped where it is put into the message, breaks included
/// ([`crate::audit::report::text::printable`]).
pub fn shown(msg: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c != '\n'
            && c != '\t'
            && (crate::audit::report::text::is_unsafe_char(c)
                || matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2064}' | '\u{feff}'))
    };
    if !msg.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(msg);
    }
    let mut out = String::with_capacity(msg.len() + 16);
    for c in msg.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl Ui {
    /// From the global flags and whether stderr is a terminal.
    pub fn new(g: &GlobalArgs) -> Self {
        Self {
            quiet: g.quiet,
            verbose: g.verbose,
            progress: !g.quiet && !g.no_progress && std::io::stderr().is_terminal(),
            color: stderr_color(),
        }
    }

    /// A step of a longer job (`[2/4] registering deploy key`), only on a terminal.
    pub fn step(&self, msg: &str) {
        if self.progress {
            let _ = writeln!(std::io::stderr(), "{}", shown(msg));
        }
    }

    /// Information the user should see (public key, next steps); silenced by `-q`.
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{}", shown(msg));
        }
    }

    /// The result of the command when it is not data on stdout (the public key and fingerprint
    /// to register): shown even with `-q`, which silences only chatter.
    pub fn result(&self, msg: &str) {
        let _ = writeln!(std::io::stderr(), "{}", shown(msg));
    }

    /// Detail for `-v`.
    pub fn detail(&self, msg: &str) {
        if self.verbose {
            let _ = writeln!(std::io::stderr(), "{}", shown(msg));
        }
    }

    /// A warning; shown even with `-q`.
    pub fn warn(&self, msg: &str) {
        let _ = writeln!(
            std::io::stderr(),
            "{} {}",
            self.label("warning:", "33"),
            shown(msg)
        );
    }

    /// `error:` / `warning:` in bold red / yellow when colour is on.
    fn label(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[1;{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A problem with one input that did not stop the command (`error: FILE:LINE: ...`).
    pub fn problem(&self, msg: &str) {
        let _ = writeln!(
            std::io::stderr(),
            "{} {}",
            self.label("error:", "31"),
            shown(msg)
        );
    }

    /// A hint line after an error (`  hint: ...`).
    pub fn hint(&self, hint: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "  hint: {}", shown(hint));
    }

    /// The final error and its causes.
    pub fn error(&self, err: &anyhow::Error) {
        let mut stderr = std::io::stderr().lock();
        let top: &(dyn std::error::Error + 'static) = err.as_ref();
        let _ = writeln!(
            stderr,
            "{} {}",
            self.label("error:", "31"),
            shown(&super::spelling::show(top))
        );
        let mut after_library_error = false;
        for (i, cause) in err.chain().enumerate() {
            let ours = cause.is::<crate::error::Error>() || cause.is::<Box<crate::error::Error>>();
            // The source of a library error (io, kube, reqwest, the AWS SDK) stays attached for
            // programs; what it says is already in the library's message, cleaned of anything a
            // server could inject, so it is not printed again.
            if after_library_error && !ours {
                break;
            }
            after_library_error = ours;
            if i > 0 {
                let _ = writeln!(
                    stderr,
                    "  caused by: {}",
                    shown(&super::spelling::show(cause))
                );
            }
        }
    }
}
