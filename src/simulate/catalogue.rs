//! The scenario catalogue: one safe attack scenario for every rule of the default ruleset
//! and for each of Falco's 25 stable rules. Pure data: what each scenario runs, which
//! rules must report it (per ruleset, under first-match, as the sensor and Falco run), its
//! MITRE ATT&CK tactic and technique (from the tags of the default rule it exercises), and
//! the context it needs. `runner` turns a scenario into processes; nothing here does I/O.
//!
//! A scenario's command line (`argv`) may use placeholders the runner fills in:
//!
//! | placeholder | value |
//! |---|---|
//! | `{id}`   | the run's correlation id for this scenario (`secmon-sim-<run>-<nnn>`) |
//! | `{tmp}`  | the scenario's fresh temporary directory (its name is the id) |
//! | `{bin}`  | `{tmp}/bin`, where the stand-ins are |
//! | `{shm}`  | a fresh directory under `/dev/shm` named after the id |
//! | `{self}` | this program (`kubectl-secmon`) |
//! | `{api}`  | the Kubernetes API server address the run contacts (`--api-server`) |
//!
//! A program without a `/` is looked up in a fixed system `PATH`. Actions in Rust run as
//! `{self} __action NAME …` (see [`super::actions`]). Where a rule looks at a process name,
//! the scenario runs a stand-in under that name: a copy of `/bin/true` (the name is all
//! that matters: `shred`, `nc`, `debugfs`, `xmrig`), a copy of `/bin/sh` (`login`, which must
//! start a child), or a link to this program (`httpd`, `ssh`, which must make system
//! calls of their own). Every scenario puts `{id}` in its command line or its paths.

use serde::Serialize;

use crate::sensor::alert::glob_match;

/// The rulesets scenarios are written against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RulesetKind {
    /// kubectl-secmon's default rules (rules/secmon_rules.yaml)
    Default,
    /// Falco's stable rules (falco_rules.yaml), run by the sensor or by Falco itself
    FalcoStable,
}

impl RulesetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RulesetKind::Default => "default",
            RulesetKind::FalcoStable => "falco-stable",
        }
    }
}

/// Something a scenario needs from the machine it runs on. Missing: SKIPPED, never FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A container (`--container`): the rule only looks at containerised processes.
    Container,
    /// Root (capabilities such as CAP_SYS_ADMIN; see [`Scenario::caps`]).
    Root,
    /// A program on the system `PATH`.
    Binary(&'static str),
    /// A filesystem type the kernel supports (`/proc/filesystems`).
    Filesystem(&'static str),
    /// A file or directory that must exist.
    Path(&'static str),
    /// A system account (daemon, nobody or bin) in /etc/passwd to run as.
    SystemAccount,
    /// Every capability the kernel has, as a privileged container holds them.
    Privileged,
}

impl Need {
    pub fn describe(self) -> String {
        match self {
            Need::Container => "container".into(),
            Need::Root => "root".into(),
            Need::Binary(b) => format!("binary {b}"),
            Need::Filesystem(f) => format!("{f} filesystem"),
            Need::Path(p) => p.to_string(),
            Need::SystemAccount => "system account".into(),
            Need::Privileged => "privileged (every capability)".into(),
        }
    }
}

/// What a stand-in is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandInKind {
    /// A copy of `/bin/true`.
    True,
    /// A copy of `/bin/sh`.
    Shell,
    /// A symbolic link to this program.
    Myself,
}

/// Where a stand-in goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandInDir {
    /// `{bin}`
    Bin,
    /// `{shm}`
    Shm,
}

/// A program under the name a rule looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandIn {
    pub name: &'static str,
    pub kind: StandInKind,
    pub dir: StandInDir,
}

const fn bin(name: &'static str, kind: StandInKind) -> StandIn {
    StandIn {
        name,
        kind,
        dir: StandInDir::Bin,
    }
}

/// One attack scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    pub name: &'static str,
    /// What it does, in one sentence.
    pub description: &'static str,
    /// The default rules that must report it.
    pub default_rules: &'static [&'static str],
    /// Falco's stable rules that must report it (empty: no stable rule covers it).
    pub falco_rules: &'static [&'static str],
    /// MITRE ATT&CK tactic, as the rule tag spells it (`mitre_execution`).
    pub tactic: &'static str,
    /// MITRE ATT&CK technique (`T1059.004`).
    pub technique: &'static str,
    pub needs: &'static [Need],
    /// The capabilities it needs: a root process holding only these (as its Job pod does
    /// with `--in-cluster`) runs it; tests/simulate_cluster.rs checks each scenario so.
    /// `kernel-module-load` needs none: the kernel refuses its attempt either way.
    pub caps: &'static [&'static str],
    pub standins: &'static [StandIn],
    /// The command line, with placeholders.
    pub argv: &'static [&'static str],
    /// Run with a pseudo-terminal as the controlling terminal.
    pub tty: bool,
    /// Run as a system account instead of root.
    pub as_system_account: bool,
    /// Takes seconds by design (a rule that waits for a process to be old); left out of
    /// load mode.
    pub slow: bool,
}

impl Scenario {
    /// The rules that must report the scenario under `ruleset`.
    pub fn rules(&self, ruleset: RulesetKind) -> &'static [&'static str] {
        match ruleset {
            RulesetKind::Default => self.default_rules,
            RulesetKind::FalcoStable => self.falco_rules,
        }
    }

    pub fn needs_container(&self) -> bool {
        self.needs.contains(&Need::Container)
    }

    /// The context, for people: `container, root (CAP_SYS_ADMIN), binary find` or `any`.
    pub fn context(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for n in self.needs {
            let mut s = n.describe();
            if *n == Need::Root && !self.caps.is_empty() {
                s = format!("{s} ({})", self.caps.join(", "));
            }
            parts.push(s);
        }
        if parts.is_empty() {
            "any".into()
        } else {
            parts.join(", ")
        }
    }

    /// The tactic's ATT&CK name (`Execution`).
    pub fn tactic_name(&self) -> &'static str {
        tactic_name(self.tactic)
    }

    /// `Execution T1059.004`.
    pub fn mitre(&self) -> String {
        format!("{} {}", self.tactic_name(), self.technique)
    }
}

/// The ATT&CK name of a `mitre_*` tactic tag.
pub fn tactic_name(tag: &str) -> &'static str {
    TACTICS
        .iter()
        .find(|(t, _)| *t == tag)
        .map_or("Other", |(_, n)| *n)
}

/// ATT&CK tactics in matrix order, as rule tags spell them, with their names.
pub const TACTICS: &[(&str, &str)] = &[
    ("mitre_initial_access", "Initial Access"),
    ("mitre_execution", "Execution"),
    ("mitre_persistence", "Persistence"),
    ("mitre_privilege_escalation", "Privilege Escalation"),
    ("mitre_defense_evasion", "Defense Evasion"),
    ("mitre_credential_access", "Credential Access"),
    ("mitre_discovery", "Discovery"),
    ("mitre_lateral_movement", "Lateral Movement"),
    ("mitre_command_and_control", "Command and Control"),
    ("mitre_impact", "Impact"),
];

use Need::*;
use StandInKind::{Myself, Shell, True};

const ACTION: &str = "__action";

/// Every scenario, grouped roughly by tactic.
pub const SCENARIOS: &[Scenario] = &[
    // ---------------------------------------------------------------- execution
    Scenario {
        name: "terminal-shell-in-container",
        description: "Start a shell with a pseudo-terminal as its controlling terminal directly under the container runtime, as `kubectl exec -it` does.",
        default_rules: &["Interactive shell in container"],
        falco_rules: &["Terminal shell in container"],
        tactic: "mitre_execution",
        technique: "T1059.004",
        needs: &[Container, Root],
        caps: &[],
        standins: &[],
        argv: &["/bin/sh", "-c", ": {id}"],
        tty: true,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "shell-spawned-by-server",
        description: "A process named httpd starts `sh -c`, as a web shell or command injection does.",
        default_rules: &["Shell spawned by server process"],
        falco_rules: &["Run shell untrusted"],
        tactic: "mitre_execution",
        technique: "T1059.004",
        needs: &[],
        caps: &[],
        standins: &[bin("httpd", Myself)],
        argv: &["{bin}/httpd", ACTION, "spawn-shell", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "netcat-remote-code-execution",
        description: "Run netcat with -e /bin/sh towards loopback (a copy of /bin/true named nc: nothing connects).",
        default_rules: &["Netcat reverse shell in container"],
        falco_rules: &["Netcat Remote Code Execution in Container"],
        tactic: "mitre_execution",
        technique: "T1059",
        needs: &[Container, Root],
        caps: &[],
        standins: &[bin("nc", True)],
        argv: &["{bin}/nc", "-e", "/bin/sh", "127.0.0.1", "4444", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "stdout-redirected-to-socket",
        description: "Connect to a loopback listener and dup2 the socket onto stdout, the core of a reverse shell.",
        default_rules: &["Standard stream redirected to socket in container"],
        falco_rules: &["Redirect STDOUT/STDIN to Network Connection in Container"],
        tactic: "mitre_execution",
        technique: "T1059",
        needs: &[Container, Root],
        caps: &[],
        standins: &[],
        argv: &["{self}", ACTION, "stdout-to-socket", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "execution-from-dev-shm",
        description: "Copy /bin/true into a fresh directory under /dev/shm and execute it from there.",
        default_rules: &["Execution from shared memory"],
        falco_rules: &["Execution from /dev/shm"],
        tactic: "mitre_execution",
        technique: "T1059.004",
        needs: &[Path("/dev/shm")],
        caps: &[],
        standins: &[StandIn {
            name: "payload",
            kind: True,
            dir: StandInDir::Shm,
        }],
        argv: &["{shm}/payload", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "drop-and-execute-new-binary",
        description: "Mount an overlay in the container's own mount namespace, copy /bin/true into its upper layer and run it.",
        default_rules: &["New executable run in container"],
        falco_rules: &["Drop and execute new binary in container"],
        tactic: "mitre_execution",
        technique: "T1204.002",
        needs: &[Container, Root, Filesystem("overlay")],
        caps: &["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"],
        standins: &[],
        argv: &["{self}", ACTION, "overlay-exec", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    // ---------------------------------------------------------------- initial access
    Scenario {
        name: "service-account-interactive",
        description: "As a system account (daemon), a process named login starts a command, as a login session would.",
        default_rules: &["Service account ran interactive command"],
        falco_rules: &["System user interactive"],
        tactic: "mitre_initial_access",
        technique: "T1078.003",
        needs: &[Root, SystemAccount],
        caps: &["CAP_SETUID", "CAP_SETGID"],
        standins: &[bin("login", Shell)],
        argv: &["{bin}/login", "-c", "/bin/true {id}; :"],
        tty: false,
        as_system_account: true,
        slow: false,
    },
    // ---------------------------------------------------------------- credential access
    Scenario {
        name: "credential-file-read",
        description: "Open /etc/shadow for reading and read one byte (nothing is kept or printed).",
        default_rules: &["Credential file read by untrusted process"],
        falco_rules: &["Read sensitive file untrusted"],
        tactic: "mitre_credential_access",
        technique: "T1003.008",
        needs: &[Root, Path("/etc/shadow")],
        caps: &[],
        standins: &[],
        argv: &["{self}", ACTION, "read-shadow", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "credential-file-read-by-server",
        description: "A process named httpd waits until it is six seconds old, then reads one byte of /etc/shadow.",
        default_rules: &["Credential file read by long-running server"],
        falco_rules: &["Read sensitive file trusted after startup"],
        tactic: "mitre_credential_access",
        technique: "T1003.008",
        needs: &[Root, Path("/etc/shadow")],
        caps: &[],
        standins: &[bin("httpd", Myself)],
        argv: &["{bin}/httpd", ACTION, "read-shadow-after-startup", "{id}"],
        tty: false,
        as_system_account: false,
        slow: true,
    },
    Scenario {
        name: "path-traversal-read",
        description: "Open a file under /etc through /etc/../etc/../etc/, as a path-traversal bug does (the file does not exist: nothing is read).",
        default_rules: &["Path traversal to sensitive file"],
        falco_rules: &["Directory traversal monitored file read"],
        tactic: "mitre_credential_access",
        technique: "T1552.001",
        needs: &[],
        caps: &[],
        standins: &[],
        argv: &["{self}", ACTION, "traversal-open", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "symlink-to-sensitive-file",
        description: "Create a symbolic link to /etc/shadow in the scenario's temporary directory.",
        default_rules: &["Symlink to sensitive file"],
        falco_rules: &["Create Symlink Over Sensitive Files"],
        tactic: "mitre_credential_access",
        technique: "T1555",
        needs: &[],
        caps: &[],
        standins: &[],
        argv: &["{self}", ACTION, "symlink-shadow", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "hardlink-to-sensitive-file",
        description: "Try to hard-link /etc/shadow into a directory that does not exist (refused: the attempt is the event).",
        default_rules: &["Hardlink to sensitive file"],
        falco_rules: &["Create Hardlink Over Sensitive Files"],
        tactic: "mitre_credential_access",
        technique: "T1555",
        needs: &[],
        caps: &[],
        standins: &[],
        argv: &["{self}", ACTION, "hardlink-shadow", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "search-private-keys",
        description: "Run find for id_rsa files in the scenario's empty temporary directory.",
        default_rules: &["Search for private keys"],
        falco_rules: &["Search Private Keys or Passwords"],
        tactic: "mitre_credential_access",
        technique: "T1552.004",
        needs: &[Binary("find")],
        caps: &[],
        standins: &[],
        argv: &["find", "{tmp}", "-maxdepth", "1", "-name", "id_rsa"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "search-cloud-credentials",
        description: "Run find for .aws/credentials files in the scenario's empty temporary directory.",
        default_rules: &["Search for cloud credentials"],
        falco_rules: &["Find AWS Credentials"],
        tactic: "mitre_credential_access",
        technique: "T1552.001",
        needs: &[Binary("find")],
        caps: &[],
        standins: &[],
        argv: &[
            "find",
            "{tmp}",
            "-maxdepth",
            "1",
            "-path",
            "*/.aws/credentials",
        ],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "packet-socket",
        description: "Open and close an AF_PACKET raw socket (nothing is sent or read).",
        default_rules: &["Packet socket created in container"],
        falco_rules: &["Packet socket created in container"],
        tactic: "mitre_credential_access",
        technique: "T1557.002",
        needs: &[Container, Root],
        caps: &["CAP_NET_RAW"],
        standins: &[],
        argv: &["{self}", ACTION, "af-packet-socket", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    // ---------------------------------------------------------------- persistence
    Scenario {
        name: "write-below-etc",
        description: "In a private mount namespace with a scratch tmpfs over /etc, create a file there (the real /etc is never touched).",
        default_rules: &["Write below /etc"],
        falco_rules: &[],
        tactic: "mitre_persistence",
        technique: "T1098",
        needs: &[Root],
        caps: &["CAP_SYS_ADMIN"],
        standins: &[],
        argv: &["{self}", ACTION, "write-etc", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "write-below-binary-dir",
        description: "In a private mount namespace with a scratch tmpfs over /usr/bin, create a file there.",
        default_rules: &["Write below binary directory"],
        falco_rules: &[],
        tactic: "mitre_persistence",
        technique: "T1543",
        needs: &[Root],
        caps: &["CAP_SYS_ADMIN"],
        standins: &[],
        argv: &["{self}", ACTION, "write-bin-dir", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "ld-preload-configured",
        description: "In a private mount namespace with a scratch tmpfs over /etc, open /etc/ld.so.preload for writing.",
        default_rules: &["Dynamic linker preload configured"],
        falco_rules: &[],
        tactic: "mitre_persistence",
        technique: "T1574.006",
        needs: &[Root],
        caps: &["CAP_SYS_ADMIN"],
        standins: &[],
        argv: &["{self}", ACTION, "write-ld-preload", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "cron-job-created",
        description: "In a private mount namespace with a scratch tmpfs over /etc, create a file in /etc/cron.d.",
        default_rules: &["Scheduled task modified"],
        falco_rules: &[],
        tactic: "mitre_persistence",
        technique: "T1053.003",
        needs: &[Root],
        caps: &["CAP_SYS_ADMIN"],
        standins: &[],
        argv: &["{self}", ACTION, "write-cron", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "kernel-module-load",
        description: "Ask the kernel to load a module with finit_module on an invalid file descriptor (refused: the attempt is the event).",
        default_rules: &["Kernel module loaded from container"],
        falco_rules: &["Linux Kernel Module Injection Detected"],
        tactic: "mitre_persistence",
        technique: "T1547.006",
        needs: &[Container, Root],
        caps: &[],
        standins: &[],
        argv: &["{self}", ACTION, "module-load", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    // ---------------------------------------------------------------- privilege escalation
    Scenario {
        name: "sudoers-modified",
        description: "In a private mount namespace with a scratch tmpfs over /etc, create a file in /etc/sudoers.d.",
        default_rules: &["Sudo rules modified"],
        falco_rules: &[],
        tactic: "mitre_privilege_escalation",
        technique: "T1548.003",
        needs: &[Root],
        caps: &["CAP_SYS_ADMIN"],
        standins: &[],
        argv: &["{self}", ACTION, "write-sudoers", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "release-agent-escape",
        description: "Open a file named release_agent in the scenario's temporary directory for writing (not a real cgroup file).",
        default_rules: &["Cgroup release_agent written in container"],
        falco_rules: &["Detect release_agent File Container Escapes"],
        tactic: "mitre_privilege_escalation",
        technique: "T1611",
        needs: &[Container, Root],
        caps: &["CAP_SYS_ADMIN"],
        standins: &[],
        argv: &["{self}", ACTION, "release-agent", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "debugfs-in-privileged-container",
        description: "Run debugfs in a container holding every capability (a copy of /bin/true named debugfs).",
        default_rules: &["Debugfs run in privileged container"],
        falco_rules: &["Debugfs Launched in Privileged Container"],
        tactic: "mitre_privilege_escalation",
        technique: "T1611",
        needs: &[Container, Root, Privileged],
        caps: &[],
        standins: &[bin("debugfs", True)],
        argv: &["{bin}/debugfs", "-R", "stat /", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "host-filesystem-mount",
        description: "Mount a ramfs (a real, non-pseudo filesystem) in the container's own mount namespace, then unmount it.",
        default_rules: &["Host filesystem mounted in container"],
        falco_rules: &[],
        tactic: "mitre_privilege_escalation",
        technique: "T1611",
        needs: &[Container, Root, Filesystem("ramfs")],
        caps: &["CAP_SYS_ADMIN"],
        standins: &[],
        argv: &["{self}", ACTION, "mount-ramfs", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "namespace-entered",
        description: "setns into the process's own UTS namespace (joining a namespace, without leaving this one).",
        default_rules: &["Namespace entered from container"],
        falco_rules: &[],
        tactic: "mitre_privilege_escalation",
        technique: "T1611",
        needs: &[Container, Root],
        caps: &["CAP_SYS_ADMIN"],
        standins: &[],
        argv: &["{self}", ACTION, "setns-self", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "ptrace-attach",
        description: "Attach to a child of our own with PTRACE_ATTACH, then detach and reap it.",
        default_rules: &["Process attached with ptrace"],
        falco_rules: &["PTRACE attached to process"],
        tactic: "mitre_privilege_escalation",
        technique: "T1055.008",
        needs: &[],
        caps: &[],
        standins: &[],
        argv: &["{self}", ACTION, "ptrace-attach", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    // ---------------------------------------------------------------- defense evasion
    Scenario {
        name: "fileless-execution-memfd",
        description: "Copy /bin/true into a memfd and execute it from memory.",
        default_rules: &["Fileless execution via memfd"],
        falco_rules: &["Fileless execution via memfd_create"],
        tactic: "mitre_defense_evasion",
        technique: "T1620",
        needs: &[],
        caps: &[],
        standins: &[],
        argv: &["{self}", ACTION, "memfd-exec", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "ptrace-anti-debug",
        description: "A child asks to be traced by its parent (PTRACE_TRACEME), then exits.",
        default_rules: &["Anti-debugging with ptrace"],
        falco_rules: &["PTRACE anti-debug attempt"],
        tactic: "mitre_defense_evasion",
        technique: "T1622",
        needs: &[],
        caps: &[],
        standins: &[],
        argv: &["{self}", ACTION, "ptrace-traceme", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "log-file-truncated",
        description: "Open a file named auth.log in the scenario's temporary directory with O_TRUNC.",
        default_rules: &["Log file truncated"],
        falco_rules: &["Clear Log Activities"],
        tactic: "mitre_defense_evasion",
        technique: "T1070.002",
        needs: &[],
        caps: &[],
        standins: &[],
        argv: &["{self}", ACTION, "truncate-log", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    // ---------------------------------------------------------------- discovery
    Scenario {
        name: "k8s-api-server-contact",
        description: "Connect to the API server address (--api-server) inside a private network namespace where it is a loopback alias with a listener.",
        default_rules: &["Kubernetes API server contacted from container"],
        falco_rules: &["Contact K8S API Server From Container"],
        tactic: "mitre_discovery",
        technique: "T1613",
        needs: &[Container, Root],
        caps: &["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"],
        standins: &[],
        argv: &["{self}", ACTION, "connect-api-server", "{api}", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    // ---------------------------------------------------------------- command and control
    Scenario {
        name: "ssh-non-standard-port",
        description: "A process named ssh connects to 192.0.2.10:443, an address that exists only on the loopback of a private network namespace.",
        default_rules: &["SSH to non-standard port"],
        falco_rules: &["Disallowed SSH Connection Non Standard Port"],
        tactic: "mitre_command_and_control",
        technique: "T1571",
        needs: &[Root],
        caps: &["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"],
        standins: &[bin("ssh", Myself)],
        argv: &["{bin}/ssh", ACTION, "ssh-connect", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    // ---------------------------------------------------------------- impact
    Scenario {
        name: "bulk-data-destruction",
        description: "Run shred -u on a file of the scenario's temporary directory (a copy of /bin/true named shred).",
        default_rules: &["Bulk data destruction"],
        falco_rules: &["Remove Bulk Data from Disk"],
        tactic: "mitre_impact",
        technique: "T1485",
        needs: &[],
        caps: &[],
        standins: &[bin("shred", True)],
        argv: &["{bin}/shred", "-u", "{tmp}/data"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
    Scenario {
        name: "crypto-miner",
        description: "Run xmrig pointed at a stratum+tcp pool on loopback (a copy of /bin/true named xmrig).",
        default_rules: &["Crypto-miner activity"],
        falco_rules: &[],
        tactic: "mitre_impact",
        technique: "T1496",
        needs: &[],
        caps: &[],
        standins: &[bin("xmrig", True)],
        argv: &["{bin}/xmrig", "-o", "stratum+tcp://127.0.0.1:3333", "{id}"],
        tty: false,
        as_system_account: false,
        slow: false,
    },
];

/// The scenario with this exact name.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Scenarios by name or glob (`*`, `?`, case-insensitive), in catalogue order, each once.
/// With `all`, every scenario that some rule of `ruleset` covers. A pattern that matches
/// nothing is an error, as is asking for nothing.
pub fn select(
    patterns: &[String],
    all: bool,
    ruleset: RulesetKind,
) -> Result<Vec<&'static Scenario>, String> {
    if all {
        if !patterns.is_empty() {
            return Err("name scenarios or use --all, not both".into());
        }
        return Ok(SCENARIOS
            .iter()
            .filter(|s| !s.rules(ruleset).is_empty())
            .collect());
    }
    if patterns.is_empty() {
        return Err(
            "no scenario named: give names or globs (see `kubectl secmon simulate list`), or --all"
                .into(),
        );
    }
    let mut chosen = vec![false; SCENARIOS.len()];
    for p in patterns {
        let mut any = false;
        for (i, s) in SCENARIOS.iter().enumerate() {
            if glob_match(p, s.name) {
                chosen[i] = true;
                any = true;
            }
        }
        if !any {
            return Err(format!(
                "no scenario matches {p:?}; see `kubectl secmon simulate list`"
            ));
        }
    }
    Ok(SCENARIOS
        .iter()
        .zip(chosen)
        .filter_map(|(s, c)| c.then_some(s))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{self, HostResolver, LoadOptions};
    use std::collections::BTreeSet;

    fn default_rules() -> rules::Ruleset {
        let opts = LoadOptions {
            resolver: HostResolver::Disabled,
            ..LoadOptions::default()
        };
        rules::load_files(&rules::default_ruleset_sources(), &opts)
            .expect("default rules load")
            .0
    }

    /// Falco's stable rule names, read from the conformance copy when it is there.
    fn falco_stable_names() -> Option<Vec<String>> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/conformance/falco-rules/falco_rules.yaml"
        );
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("Falco's stable rules missing under CI: {path}: {e}");
                }
                eprintln!("SKIPPED LOUDLY: Falco's stable rules not found at {path}: {e}");
                return None;
            }
        };
        Some(
            text.lines()
                .filter_map(|l| l.strip_prefix("- rule: "))
                .map(|n| n.trim().to_string())
                .collect(),
        )
    }

    #[test]
    fn every_default_rule_has_a_scenario() {
        let rs = default_rules();
        let covered: BTreeSet<&str> = SCENARIOS
            .iter()
            .flat_map(|s| s.default_rules.iter().copied())
            .collect();
        let missing: Vec<&str> = rs
            .rules()
            .iter()
            .map(|r| r.name.as_str())
            .filter(|n| !covered.contains(n))
            .collect();
        assert!(
            missing.is_empty(),
            "default rules without a scenario (add one to src/simulate/catalogue.rs): {missing:#?}"
        );
        // ... and every rule a scenario names exists
        for s in SCENARIOS {
            assert!(
                !s.default_rules.is_empty(),
                "{} covers no default rule",
                s.name
            );
            for r in s.default_rules {
                assert!(rs.find(r).is_some(), "{}: no default rule {r:?}", s.name);
            }
        }
    }

    #[test]
    fn every_falco_stable_rule_has_a_scenario() {
        let Some(names) = falco_stable_names() else {
            return;
        };
        assert_eq!(names.len(), 25, "Falco's stable file has 25 rules");
        let covered: BTreeSet<&str> = SCENARIOS
            .iter()
            .flat_map(|s| s.falco_rules.iter().copied())
            .collect();
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !covered.contains(n.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "stable rules without a scenario: {missing:#?}"
        );
        for r in &covered {
            assert!(names.iter().any(|n| n == r), "no stable rule {r:?}");
        }
    }

    #[test]
    fn mitre_comes_from_the_rule_tags() {
        let rs = default_rules();
        for s in SCENARIOS {
            let id = rs.find(s.default_rules[0]).expect("rule");
            let tags = &rs.rule(id).expect("info").tags;
            assert!(
                tags.iter().any(|t| t == s.tactic),
                "{}: tactic {} not in {tags:?}",
                s.name,
                s.tactic
            );
            assert!(
                tags.iter().any(|t| t == s.technique),
                "{}: technique {} not in {tags:?}",
                s.name,
                s.technique
            );
            assert_ne!(s.tactic_name(), "Other", "{}", s.name);
        }
    }

    #[test]
    fn scenarios_are_well_formed() {
        let mut names = BTreeSet::new();
        for s in SCENARIOS {
            assert!(names.insert(s.name), "duplicate {}", s.name);
            assert!(
                s.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                s.name
            );
            assert!(s.description.ends_with('.'), "{}: one sentence", s.name);
            // the correlation id is on the command line (or in a path on it)
            assert!(
                s.argv
                    .iter()
                    .any(|a| a.contains("{id}") || a.contains("{tmp}")),
                "{}: no {{id}} on the command line",
                s.name
            );
            // a stand-in the command line does not run is a mistake
            for st in s.standins {
                let dir = match st.dir {
                    StandInDir::Bin => "{bin}",
                    StandInDir::Shm => "{shm}",
                };
                assert_eq!(s.argv[0], format!("{dir}/{}", st.name), "{}", s.name);
            }
            // rules that only look at containers need one
            let container_only = s
                .default_rules
                .iter()
                .any(|r| r.contains("container") || r.contains("Container"));
            assert_eq!(s.needs_container(), container_only, "{}", s.name);
            if s.as_system_account {
                assert!(s.needs.contains(&SystemAccount) && s.needs.contains(&Root));
            }
        }
        assert!(SCENARIOS.len() >= 33);
    }

    #[test]
    fn selection_by_name_glob_and_all() {
        let names = |v: Vec<&Scenario>| v.iter().map(|s| s.name).collect::<Vec<_>>();
        let d = RulesetKind::Default;
        assert_eq!(
            names(select(&["ptrace-*".into()], false, d).unwrap()),
            ["ptrace-attach", "ptrace-anti-debug"]
        );
        // catalogue order, each once, case-insensitive
        assert_eq!(
            names(select(&["PACKET-SOCKET".into(), "*packet*".into()], false, d).unwrap()),
            ["packet-socket"]
        );
        assert_eq!(select(&[], true, d).unwrap().len(), SCENARIOS.len());
        let falco = select(&[], true, RulesetKind::FalcoStable).unwrap();
        assert!(falco.iter().all(|s| !s.falco_rules.is_empty()));
        assert!(falco.len() < SCENARIOS.len());
        assert!(
            select(&["nope*".into()], false, d)
                .unwrap_err()
                .contains("nope*")
        );
        assert!(select(&[], false, d).is_err());
        assert!(select(&["x".into()], true, d).is_err());
    }

    #[test]
    fn context_is_readable() {
        let s = find("packet-socket").unwrap();
        assert_eq!(s.context(), "container, root (CAP_NET_RAW)");
        assert_eq!(find("ptrace-attach").unwrap().context(), "any");
        assert_eq!(
            find("search-private-keys").unwrap().context(),
            "binary find"
        );
        assert_eq!(
            find("terminal-shell-in-container").unwrap().mitre(),
            "Execution T1059.004"
        );
    }
}
