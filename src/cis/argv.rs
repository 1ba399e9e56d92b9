//! A component's command line as a map of flags: `--flag=value`, `--flag value`,
//! repeated flags and bare booleans, parsed from the argv the kernel keeps in
//! `/proc/<pid>/cmdline`. Whole tokens are matched, so `--etcd-servers` never passes for
//! an etcd flag and `--profiling` is not found inside `--profiling-foo`.

/// Flags of the Kubernetes components and etcd that are booleans: `--flag value` never
/// takes the next token as their value (pflag's rule: booleans need `=`).
const BOOLEAN_FLAGS: &[&str] = &[
    "--allow-privileged",
    "--anonymous-auth",
    "--auto-tls",
    "--client-cert-auth",
    "--enable-bootstrap-token-auth",
    "--enable-debugging-handlers",
    "--enable-server",
    "--fail-swap-on",
    "--leader-elect",
    "--make-iptables-util-chains",
    "--peer-auto-tls",
    "--peer-client-cert-auth",
    "--profiling",
    "--protect-kernel-defaults",
    "--rotate-certificates",
    "--rotate-server-certificates",
    "--seccomp-default",
    "--service-account-extend-token-expiration",
    "--service-account-lookup",
    "--use-service-account-credentials",
    "--v",
];

/// The parsed flags of one process, in command-line order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Args {
    /// `(name with its dashes, value)`; `None` for a bare flag.
    pub flags: Vec<(String, Option<String>)>,
    /// Tokens that are not flags (subcommands such as `hyperkube kubelet`).
    pub positional: Vec<String>,
}

impl Args {
    /// Parse an argv (without argv\[0\]).
    pub fn parse<S: AsRef<str>>(argv: &[S]) -> Args {
        let mut out = Args::default();
        let mut i = 0;
        while i < argv.len() {
            let tok = argv[i].as_ref();
            i += 1;
            if tok == "--" {
                out.positional
                    .extend(argv[i..].iter().map(|s| s.as_ref().to_string()));
                break;
            }
            if !tok.starts_with('-') || tok == "-" {
                out.positional.push(tok.to_string());
                continue;
            }
            // Single-dash long flags (`-data-dir=x`, Go's flag package) are normalised
            // to two dashes, which is how the checks name them.
            let norm = if tok.starts_with("--") {
                tok.to_string()
            } else {
                format!("-{tok}")
            };
            match norm.split_once('=') {
                Some((name, value)) => out.flags.push((name.to_string(), Some(value.to_string()))),
                None => {
                    let takes_next = !BOOLEAN_FLAGS.contains(&norm.as_str())
                        && argv.get(i).is_some_and(|n| !n.as_ref().starts_with('-'));
                    if takes_next {
                        out.flags.push((norm, Some(argv[i].as_ref().to_string())));
                        i += 1;
                    } else {
                        out.flags.push((norm, None));
                    }
                }
            }
        }
        out
    }

    /// The flag's value: the last occurrence wins, as with pflag's scalar flags; a
    /// repeated list flag (`--feature-gates`, `--tls-cipher-suites`) joins its values
    /// with `,`. A bare boolean flag reads as `true`.
    pub fn get(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .flags
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone().unwrap_or_else(|| "true".to_string()))
            .collect();
        match values.len() {
            0 => None,
            1 => values.into_iter().next(),
            _ if is_list_flag(name) => Some(values.join(",")),
            _ => values.into_iter().next_back(),
        }
    }

    /// The value of `key` inside a `key=value,key=value` flag such as `--feature-gates`.
    pub fn get_key(&self, name: &str, key: &str) -> Option<String> {
        let all = self.get(name)?;
        all.split(',').rev().find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(n, _)| n == name)
    }
}

fn is_list_flag(name: &str) -> bool {
    matches!(
        name,
        "--feature-gates"
            | "--tls-cipher-suites"
            | "--enable-admission-plugins"
            | "--disable-admission-plugins"
            | "--authorization-mode"
            | "--service-account-key-file"
            | "--api-audiences"
            | "--service-account-issuer"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_flags() {
        let a = Args::parse(&[
            "--a=1",
            "--b",
            "2",
            "--profiling",
            "false",
            "--c",
            "--d=",
            "-data-dir=/x",
            "--feature-gates=A=true",
            "--feature-gates=B=false",
            "--e=1",
            "--e=2",
        ]);
        assert_eq!(a.get("--a").as_deref(), Some("1"));
        assert_eq!(a.get("--b").as_deref(), Some("2"));
        // A boolean never takes the next token.
        assert_eq!(a.get("--profiling").as_deref(), Some("true"));
        assert_eq!(a.positional, vec!["false"]);
        assert_eq!(a.get("--c").as_deref(), Some("true"));
        assert_eq!(a.get("--d").as_deref(), Some(""));
        assert_eq!(a.get("--data-dir").as_deref(), Some("/x"));
        assert_eq!(a.get("--feature-gates").as_deref(), Some("A=true,B=false"));
        assert_eq!(a.get_key("--feature-gates", "B").as_deref(), Some("false"));
        assert_eq!(a.get_key("--feature-gates", "C"), None);
        assert_eq!(a.get("--e").as_deref(), Some("2"));
        assert_eq!(a.get("--missing"), None);
        assert!(!a.has("--etcd"));
    }

    #[test]
    fn whole_tokens_only_and_double_dash() {
        let a = Args::parse(&["--etcd-servers=https://x", "--", "--not-a-flag"]);
        assert!(!a.has("--etcd"));
        assert_eq!(a.positional, vec!["--not-a-flag"]);
    }
}
