//! The `tessera` command end to end: help, administration against a temporary data dir,
//! `tessera serve` as a child process (tokens, metadata, graceful SIGTERM), and the
//! configuration layers (TOML file, `TESSERA_*` variables, flags).

use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");
/// How long one administrative command may take (Argon2id in a debug build included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `tessera serve` may take to start, and to stop after SIGTERM.
const SERVE_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a finished command left behind.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    #[track_caller]
    fn assert_ok(&self) -> &Self {
        assert!(
            self.status.success(),
            "expected success, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn assert_fails(&self) -> &Self {
        assert!(
            !self.status.success(),
            "expected a failure, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        assert!(
            !self.stderr.trim().is_empty(),
            "a failure must say why on stderr"
        );
        self
    }
}

/// A temporary data dir the commands share.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tessera --data-dir D args...`
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[], None)
    }

    /// `tessera args...`, without `--data-dir`.
    fn run_bare(&self, args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        run(cmd, None, self.dir.path())
    }

    /// `tessera --data-dir D args...` with extra environment and standard input.
    fn run_with(&self, args: &[&str], envs: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut cmd = self.command();
        cmd.arg("--data-dir").arg(self.data_dir()).args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        run(cmd, stdin, self.dir.path())
    }

    /// The `tessera` command with a clean environment, working in the temp dir.
    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("TESSERA_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// Register a client and return its JSON (`client_id`, `client_secret`).
    fn create_client(&self, extra: &[&str]) -> Value {
        let mut args = vec![
            "client",
            "create",
            "--name",
            "Reports",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
            "--json",
        ];
        args.extend_from_slice(extra);
        self.run(&args).assert_ok().json()
    }
}

/// Run `cmd` to completion within [`COMMAND_TIMEOUT`], output captured in files (no
/// pipe can fill up and block the child).
fn run(mut cmd: Command, stdin: Option<&str>, scratch: &Path) -> Output {
    let n = unique();
    let out_path = scratch.join(format!("out-{n}.txt"));
    let err_path = scratch.join(format!("err-{n}.txt"));
    cmd.stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = ChildGuard(cmd.spawn().expect("spawn tessera"));
    if let Some(input) = stdin {
        let mut pipe = child.0.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
        // Dropping the pipe closes it: the command sees end of input.
    }
    let status = child.wait_for(COMMAND_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "{cmd:?} did not finish within {COMMAND_TIMEOUT:?}; stderr:\n{}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        )
    });
    Output {
        status,
        stdout: std::fs::read_to_string(&out_path).expect("stdout"),
        stderr: std::fs::read_to_string(&err_path).expect("stderr"),
    }
}

/// A number no other call in this test binary gets (for scratch file names).
fn unique() -> usize {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A child process that is killed when the guard goes away, even on a panic.
struct ChildGuard(Child);

impl ChildGuard {
    /// Poll until the child exits or `limit` passes.
    fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// `tessera serve` running as a child process.
struct Server {
    child: ChildGuard,
    /// Base URL, as printed by the server.
    url: String,
    log: PathBuf,
}

impl Server {
    /// Start `tessera serve` with `args` after the data dir; wait for the
    /// "Tessera listening on http://..." line and return the URL it names.
    fn start(env: &Env, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let n = unique();
        let log = env.path(&format!("serve-{n}.log"));
        let err = env.path(&format!("serve-{n}.err"));
        let mut cmd = env.command();
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(env.data_dir())
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&log).expect("log file"))
            .stderr(File::create(&err).expect("stderr file"));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = ChildGuard(cmd.spawn().expect("spawn tessera serve"));
        let deadline = Instant::now() + SERVE_TIMEOUT;
        loop {
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = out.lines().find(|l| l.starts_with("Tessera listening on ")) {
                let url = line["Tessera listening on ".len()..]
                    .split_whitespace()
                    .next()
                    .expect("a URL")
                    .to_owned();
                return Server {
                    child,
                    url,
                    log: log.clone(),
                };
            }
            if let Some(status) = child.0.try_wait().expect("try_wait") {
                panic!(
                    "tessera serve exited with {status} before listening\nstdout:\n{out}\nstderr:\n{}",
                    std::fs::read_to_string(&err).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tessera serve printed no listening line within {SERVE_TIMEOUT:?}; stdout:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Start on a port chosen in advance, with the matching issuer.
    fn start_at_free_port(env: &Env, envs: &[(&str, &str)]) -> (Server, String) {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let issuer = format!("http://127.0.0.1:{port}");
        let server = Server::start(env, &["--listen", &listen, "--issuer", &issuer], envs);
        assert_eq!(server.url, issuer, "the server listens where it was told");
        (server, issuer)
    }

    /// SIGTERM, then the exit status within [`STOP_TIMEOUT`].
    fn terminate(mut self) -> ExitStatus {
        let pid = self.child.0.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(killed.success(), "kill -TERM {pid} failed");
        self.child.wait_for(STOP_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "tessera serve did not stop within {STOP_TIMEOUT:?} of SIGTERM; stdout:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        })
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// `POST /token` with `grant_type=client_credentials` and Basic authentication.
async fn client_credentials(url: &str, client: &Value, scope: &str) -> reqwest::Response {
    http()
        .post(format!("{url}/token"))
        .basic_auth(
            client["client_id"].as_str().expect("client_id"),
            client["client_secret"].as_str(),
        )
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .expect("token request")
}

fn usernames(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|u| u["username"].as_str().expect("username"))
        .collect()
}

fn scope_names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect()
}

// ---------------------------------------------------------------------------------
// Help

#[test]
fn help_lists_the_commands_and_options() {
    let env = Env::new();
    let top = env.run_bare(&["--help"]);
    top.assert_ok();
    for word in ["serve", "client", "user", "scope"] {
        assert!(
            top.stdout.contains(word),
            "`tessera --help` does not mention {word}:\n{}",
            top.stdout
        );
    }

    let create = env.run_bare(&["client", "create", "--help"]);
    create.assert_ok();
    for word in [
        "--redirect-uri",
        "--json",
        "--name",
        "--scope",
        "--public",
        "--grant-type",
    ] {
        assert!(
            create.stdout.contains(word),
            "`tessera client create --help` does not mention {word}:\n{}",
            create.stdout
        );
    }
}

// ---------------------------------------------------------------------------------
// Clients

#[test]
fn client_lifecycle() {
    let env = Env::new();
    env.run(&[
        "scope",
        "create",
        "transactions:read",
        "--description",
        "Read your transactions",
    ])
    .assert_ok();

    let created = env.create_client(&[
        "--scope",
        "transactions:read",
        "--grant-type",
        "client_credentials",
    ]);
    let id = created["client_id"].as_str().expect("client_id").to_owned();
    let secret = created["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned();
    assert!(!id.is_empty());
    assert_eq!(secret.len(), 43, "32 random bytes, base64url: {secret}");

    let list = env.run(&["client", "list", "--json"]).assert_ok().json();
    let listed = list
        .as_array()
        .expect("an array")
        .iter()
        .find(|c| c["client_id"] == id.as_str())
        .unwrap_or_else(|| panic!("client {id} not listed: {list}"));
    assert_eq!(listed["name"], "Reports");
    assert!(
        listed.get("client_secret").is_none(),
        "the list must not show secrets"
    );

    let shown = env
        .run(&["client", "show", &id, "--json"])
        .assert_ok()
        .json();
    assert_eq!(shown["client_id"], id.as_str());
    assert_eq!(shown["name"], "Reports");
    assert_eq!(shown["public"], false);
    assert_eq!(shown["scope"], "transactions:read");
    assert_eq!(
        shown["grant_types"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(
        shown["redirect_uris"],
        serde_json::json!(["http://127.0.0.1:9000/cb"])
    );
    assert_eq!(shown["token_format"], "jwt");

    let rotated = env
        .run(&["client", "rotate-secret", &id, "--json"])
        .assert_ok()
        .json();
    assert_eq!(rotated["client_id"], id.as_str());
    let new_secret = rotated["client_secret"].as_str().expect("client_secret");
    assert_eq!(new_secret.len(), 43);
    assert_ne!(new_secret, secret, "rotation must produce a new secret");

    env.run(&["client", "delete", &id]).assert_ok();
    let gone = env.run(&["client", "show", &id, "--json"]);
    gone.assert_fails();
    assert!(gone.stderr.contains(&id), "stderr: {}", gone.stderr);
    let list = env.run(&["client", "list", "--json"]).assert_ok().json();
    assert!(list.as_array().expect("an array").is_empty(), "{list}");
    env.run(&["client", "delete", &id]).assert_fails();
}

#[test]
fn public_client_has_no_secret() {
    let env = Env::new();
    let created = env.create_client(&["--public"]);
    assert!(created["client_id"].is_string());
    assert!(
        created["client_secret"].is_null(),
        "a public client has no secret: {created}"
    );
    let id = created["client_id"].as_str().unwrap();
    let shown = env
        .run(&["client", "show", id, "--json"])
        .assert_ok()
        .json();
    assert_eq!(shown["public"], true);
    assert_eq!(
        shown["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    // A public client has no secret to rotate.
    env.run(&["client", "rotate-secret", id, "--json"])
        .assert_fails();
}

#[test]
fn client_create_refuses_bad_input() {
    let env = Env::new();
    let unknown = env.run(&[
        "client",
        "create",
        "--name",
        "Reports",
        "--redirect-uri",
        "http://127.0.0.1:9000/cb",
        "--scope",
        "transactions:read",
        "--json",
    ]);
    unknown.assert_fails();
    assert!(
        unknown.stderr.contains("unknown scope") && unknown.stderr.contains("transactions:read"),
        "stderr: {}",
        unknown.stderr
    );
    assert!(
        unknown.stdout.trim().is_empty(),
        "nothing on stdout: {}",
        unknown.stdout
    );

    // http is allowed only on loopback.
    env.run(&[
        "client",
        "create",
        "--name",
        "Reports",
        "--redirect-uri",
        "http://example.com/cb",
    ])
    .assert_fails();
    // A public client cannot use client_credentials.
    env.run(&[
        "client",
        "create",
        "--name",
        "Reports",
        "--public",
        "--grant-type",
        "client_credentials",
    ])
    .assert_fails();

    // Nothing was registered.
    let list = env.run(&["client", "list", "--json"]).assert_ok().json();
    assert!(list.as_array().expect("an array").is_empty(), "{list}");
}

// ---------------------------------------------------------------------------------
// Users

#[test]
fn user_lifecycle() {
    let env = Env::new();
    let created = env.run_with(
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--password-stdin",
            "--json",
        ],
        &[],
        Some("alice-password-1\n"),
    );
    created.assert_ok();
    let created = created.json();
    assert_eq!(created["username"], "alice");
    assert!(
        created["password"].is_null(),
        "a password read from stdin is not echoed: {created}"
    );

    let list = env.run(&["user", "list", "--json"]).assert_ok().json();
    assert_eq!(usernames(&list), ["alice"]);
    assert!(
        !list.to_string().contains("alice-password-1") && !list.to_string().contains("argon2"),
        "the list must not show passwords or hashes: {list}"
    );

    // The same username twice is refused.
    env.run_with(
        &["user", "create", "--username", "alice", "--password-stdin"],
        &[],
        Some("another-password\n"),
    )
    .assert_fails();

    env.run_with(
        &["user", "set-password", "alice", "--password-stdin"],
        &[],
        Some("alice-password-2\n"),
    )
    .assert_ok();
    env.run_with(
        &["user", "set-password", "bob", "--password-stdin"],
        &[],
        Some("bob-password-1\n"),
    )
    .assert_fails();

    env.run(&["user", "delete", "alice"]).assert_ok();
    let list = env.run(&["user", "list", "--json"]).assert_ok().json();
    assert!(usernames(&list).is_empty(), "{list}");
    env.run(&["user", "delete", "alice"]).assert_fails();
}

#[test]
fn short_passwords_are_refused() {
    let env = Env::new();
    let short = env.run_with(
        &["user", "create", "--username", "alice", "--password-stdin"],
        &[],
        Some("short7!\n"),
    );
    short.assert_fails();
    assert!(
        short.stderr.contains("8 characters"),
        "stderr: {}",
        short.stderr
    );
    let list = env.run(&["user", "list", "--json"]).assert_ok().json();
    assert!(usernames(&list).is_empty(), "no user was created: {list}");

    env.run_with(
        &["user", "create", "--username", "alice", "--password-stdin"],
        &[],
        Some("alice-password-1\n"),
    )
    .assert_ok();
    let short = env.run_with(
        &["user", "set-password", "alice", "--password-stdin"],
        &[],
        Some("1234567\n"),
    );
    short.assert_fails();
    assert!(
        short.stderr.contains("8 characters"),
        "stderr: {}",
        short.stderr
    );
}

#[test]
fn generated_password_is_printed_once() {
    let env = Env::new();
    let created = env
        .run(&["user", "create", "--username", "bob", "--json"])
        .assert_ok()
        .json();
    let password = created["password"].as_str().expect("a generated password");
    assert!(password.chars().count() >= 8, "{password}");
}

// ---------------------------------------------------------------------------------
// Scopes

#[test]
fn scope_lifecycle() {
    let env = Env::new();
    env.run(&[
        "scope",
        "create",
        "transactions:read",
        "--description",
        "Read your transactions",
    ])
    .assert_ok();
    env.run(&[
        "scope",
        "create",
        "accounts:read",
        "--description",
        "See your accounts",
    ])
    .assert_ok();

    let list = env.run(&["scope", "list", "--json"]).assert_ok().json();
    let mut names = scope_names(&list);
    names.sort();
    assert_eq!(names, ["accounts:read", "transactions:read"]);
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "transactions:read")
        .unwrap();
    assert_eq!(entry["description"], "Read your transactions");

    // create again changes the description.
    env.run(&[
        "scope",
        "create",
        "transactions:read",
        "--description",
        "Read all your transactions",
    ])
    .assert_ok();
    let list = env.run(&["scope", "list", "--json"]).assert_ok().json();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "transactions:read")
        .unwrap();
    assert_eq!(entry["description"], "Read all your transactions");

    env.run(&["scope", "delete", "transactions:read"])
        .assert_ok();
    let list = env.run(&["scope", "list", "--json"]).assert_ok().json();
    assert_eq!(scope_names(&list), ["accounts:read"]);
    env.run(&["scope", "delete", "transactions:read"])
        .assert_fails();

    // Invalid names and empty descriptions are refused.
    env.run(&["scope", "create", "bad scope", "--description", "x"])
        .assert_fails();
    env.run(&["scope", "create", "reports:read", "--description", " "])
        .assert_fails();
}

// ---------------------------------------------------------------------------------
// Serving

#[tokio::test]
async fn serve_issues_tokens_and_stops_on_sigterm() {
    let env = Env::new();
    env.run(&[
        "scope",
        "create",
        "transactions:read",
        "--description",
        "Read your transactions",
    ])
    .assert_ok();
    let client = env.create_client(&[
        "--scope",
        "transactions:read",
        "--grant-type",
        "client_credentials",
    ]);

    let (server, issuer) = Server::start_at_free_port(&env, &[]);

    let r = client_credentials(&server.url, &client, "transactions:read").await;
    assert_eq!(r.status(), 200);
    let token: Value = r.json().await.expect("json");
    assert!(
        token["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{token}"
    );
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 600);
    assert_eq!(token["scope"], "transactions:read");

    // A wrong secret is refused.
    let r = http()
        .post(format!("{}/token", server.url))
        .basic_auth(client["client_id"].as_str().unwrap(), Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    assert_eq!(r.status(), 401);

    let r = http()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            server.url
        ))
        .send()
        .await
        .expect("metadata");
    assert_eq!(r.status(), 200);
    let metadata: Value = r.json().await.expect("json");
    assert_eq!(metadata["issuer"], issuer.as_str());
    assert_eq!(metadata["token_endpoint"], format!("{issuer}/token"));
    assert!(
        metadata["scopes_supported"]
            .as_array()
            .expect("scopes_supported")
            .iter()
            .any(|s| s == "transactions:read"),
        "{metadata}"
    );

    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM must stop the server cleanly, got {status}"
    );
}

#[tokio::test]
async fn serve_on_port_zero_reports_the_bound_port() {
    let env = Env::new();
    let server = Server::start(&env, &["--listen", "127.0.0.1:0"], &[]);
    let port: u16 = server
        .url
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected URL {}", server.url))
        .parse()
        .expect("a port");
    assert_ne!(port, 0);
    let r = http()
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 200);
    let status = server.terminate();
    assert!(status.success(), "got {status}");
}

#[test]
fn serve_refuses_a_non_loopback_http_issuer() {
    let env = Env::new();
    let out = env.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--issuer",
        "http://auth.example.com",
    ]);
    out.assert_fails();
    assert!(out.stderr.contains("issuer"), "stderr: {}", out.stderr);
}

// ---------------------------------------------------------------------------------
// Configuration layers

#[tokio::test]
async fn environment_variables_override_the_defaults() {
    let env = Env::new();
    env.run(&[
        "scope",
        "create",
        "transactions:read",
        "--description",
        "Read your transactions",
    ])
    .assert_ok();
    let client = env.create_client(&[
        "--scope",
        "transactions:read",
        "--grant-type",
        "client_credentials",
    ]);

    let (server, _) =
        Server::start_at_free_port(&env, &[("TESSERA_TOKENS__ACCESS_TOKEN_TTL", "5m")]);
    let r = client_credentials(&server.url, &client, "transactions:read").await;
    assert_eq!(r.status(), 200);
    let token: Value = r.json().await.expect("json");
    assert_eq!(token["expires_in"], 300, "{token}");
    let status = server.terminate();
    assert!(status.success(), "got {status}");
}

#[test]
fn config_file_scopes_are_applied() {
    let env = Env::new();
    let config = env.path("tessera.toml");
    std::fs::write(
        &config,
        "[[scopes]]\nname = \"accounts:read\"\ndescription = \"See your accounts\"\n",
    )
    .expect("write config");
    let list = env
        .run(&[
            "--config",
            config.to_str().unwrap(),
            "scope",
            "list",
            "--json",
        ])
        .assert_ok()
        .json();
    assert_eq!(
        list,
        serde_json::json!([{ "name": "accounts:read", "description": "See your accounts" }])
    );

    // TESSERA_CONFIG names the file too.
    let list = env
        .run_with(
            &["scope", "list", "--json"],
            &[("TESSERA_CONFIG", config.to_str().unwrap())],
            None,
        )
        .assert_ok()
        .json();
    assert_eq!(scope_names(&list), ["accounts:read"]);
}

#[test]
fn config_file_errors_are_refused() {
    let env = Env::new();
    let config = env.path("tessera.toml");

    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nno_such_option = true\n")
        .expect("write config");
    let out = env.run(&[
        "--config",
        config.to_str().unwrap(),
        "scope",
        "list",
        "--json",
    ]);
    out.assert_fails();
    assert!(
        out.stderr.contains("no_such_option"),
        "the error names the unknown key: {}",
        out.stderr
    );

    std::fs::write(&config, "[tokens]\naccess_token_tll = \"5m\"\n").expect("write config");
    env.run(&["--config", config.to_str().unwrap(), "scope", "list"])
        .assert_fails();

    // A kept introspection answer may hide another instance's revocation this long.
    std::fs::write(&config, "[tokens]\nintrospection_cache = \"10s\"\n").expect("write config");
    let out = env.run(&["--config", config.to_str().unwrap(), "scope", "list"]);
    out.assert_fails();
    assert!(
        out.stderr
            .contains("tokens.introspection_cache must be 5s at most"),
        "{}",
        out.stderr
    );
    std::fs::write(&config, "[tokens]\nintrospection_cache = \"0s\"\n").expect("write config");
    env.run(&["--config", config.to_str().unwrap(), "scope", "list"])
        .assert_ok();

    let missing = env.path("missing.toml");
    env.run(&["--config", missing.to_str().unwrap(), "scope", "list"])
        .assert_fails();
}

#[test]
fn required_scopes_must_be_among_the_clients() {
    let env = Env::new();
    env.run(&[
        "scope",
        "create",
        "transactions:read",
        "--description",
        "Read your transactions",
    ])
    .assert_ok();
    env.run(&[
        "scope",
        "create",
        "transactions:write",
        "--description",
        "Create transactions",
    ])
    .assert_ok();
    let created = env.create_client(&[
        "--scope",
        "transactions:read transactions:write",
        "--required-scope",
        "transactions:read",
    ]);
    let id = created["client_id"].as_str().unwrap();
    let shown = env
        .run(&["client", "show", id, "--json"])
        .assert_ok()
        .json();
    assert_eq!(shown["required_scope"], "transactions:read");
    let refused = env.run(&[
        "client",
        "create",
        "--name",
        "Other",
        "--redirect-uri",
        "http://127.0.0.1:9000/cb",
        "--scope",
        "transactions:read",
        "--required-scope",
        "transactions:write",
    ]);
    refused.assert_fails();
    assert!(
        refused.stderr.contains("required scope"),
        "{}",
        refused.stderr
    );
}

#[test]
fn grants_and_audit_from_the_command_line() {
    let env = Env::new();
    env.run_with(
        &["user", "create", "--username", "alice", "--password-stdin"],
        &[],
        Some("alice-password-1\n"),
    )
    .assert_ok();
    let grants = env
        .run(&["grant", "list", "--username", "alice", "--json"])
        .assert_ok()
        .json();
    assert_eq!(grants, serde_json::json!([]));
    env.run(&["grant", "list", "--username", "nobody", "--json"])
        .assert_fails();
    let missing = env.run(&["grant", "revoke", "no-such-grant"]);
    missing.assert_fails();
    assert!(
        missing.stderr.contains("no grant no-such-grant"),
        "{}",
        missing.stderr
    );
    let events = env.run(&["audit", "list", "--json"]).assert_ok().json();
    assert_eq!(events, serde_json::json!([]));
    env.run(&[
        "audit",
        "list",
        "--username",
        "alice",
        "--limit",
        "5",
        "--json",
    ])
    .assert_ok();
    let help = env.run(&["--help"]).assert_ok().stdout.clone();
    assert!(
        help.contains("grant") && help.contains("audit") && help.contains("demo"),
        "{help}"
    );
}

// ---------------------------------------------------------------------------------
// Admin API tokens

#[tokio::test]
async fn admin_tokens_are_created_listed_and_revoked() {
    let env = Env::new();
    let created = env
        .run(&["admin-token", "create", "--name", "deploy", "--json"])
        .assert_ok()
        .json();
    let id = created["id"].as_str().expect("id").to_owned();
    let token = created["token"].as_str().expect("token").to_owned();
    assert_eq!(token.len(), 43, "256 bits, BASE64URL: {token}");
    let plain = env
        .run(&["admin-token", "create", "--name", "laptop"])
        .assert_ok()
        .stdout
        .clone();
    assert!(
        plain.contains("token: ") && plain.contains("not shown again"),
        "{plain}"
    );
    env.run(&["admin-token", "create", "--name", ""])
        .assert_fails();

    let list = env
        .run(&["admin-token", "list", "--json"])
        .assert_ok()
        .json();
    let mut names: Vec<&str> = list
        .as_array()
        .expect("an array")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["deploy", "laptop"]);
    assert!(
        !list.to_string().contains(&token),
        "the list never shows a token"
    );
    let by_name = |list: &Value, name: &str| -> Value {
        list.as_array()
            .expect("an array")
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .expect("listed")
    };
    assert_eq!(by_name(&list, "deploy")["id"], id.as_str());
    assert!(by_name(&list, "deploy")["revoked_at"].is_null());
    let text = env.run(&["admin-token", "list"]).assert_ok().stdout.clone();
    assert!(text.contains(&id) && text.contains("active"), "{text}");

    // The server takes the token, and refuses it once revoked.
    let server = Server::start(&env, &["--listen", "127.0.0.1:0"], &[]);
    let clients = format!("{}/admin/clients", server.url);
    let r = http()
        .get(&clients)
        .bearer_auth(&token)
        .send()
        .await
        .expect("admin request");
    assert_eq!(r.status(), 200);
    env.run(&["admin-token", "revoke", &id]).assert_ok();
    let r = http()
        .get(&clients)
        .bearer_auth(&token)
        .send()
        .await
        .expect("admin request");
    assert_eq!(r.status(), 401);
    server.terminate();

    let list = env
        .run(&["admin-token", "list", "--json"])
        .assert_ok()
        .json();
    assert!(by_name(&list, "deploy")["revoked_at"].is_i64(), "{list}");
    assert!(by_name(&list, "laptop")["revoked_at"].is_null(), "{list}");
    let again = env.run(&["admin-token", "revoke", &id]);
    again.assert_fails();
    assert!(
        again.stderr.contains("no active admin token"),
        "{}",
        again.stderr
    );
}

// ---------------------------------------------------------------------------------
// Housekeeping

#[test]
fn gc_on_a_fresh_data_dir_purges_nothing() {
    let env = Env::new();
    let report = env.run(&["gc", "--json"]).assert_ok().json();
    let counts = report.as_object().expect("an object");
    for table in [
        "auth_codes",
        "sessions",
        "refresh_tokens",
        "access_tokens",
        "revoked_jtis",
        "client_assertion_jtis",
        "revocations",
        "grants",
        "audit_events",
    ] {
        assert_eq!(counts.get(table), Some(&Value::from(0)), "{report}");
    }
    let text = env.run(&["gc"]).assert_ok().stdout.clone();
    assert!(text.contains("total"), "{text}");
}

#[test]
fn migrate_applies_the_migrations() {
    let env = Env::new();
    let out = env.run(&["migrate"]);
    out.assert_ok();
    assert!(
        out.stdout
            .contains("is migrated to this version of Tessera"),
        "{}",
        out.stdout
    );
    // Idempotent.
    env.run(&["migrate"]).assert_ok();
    env.run(&["scope", "list", "--json"]).assert_ok();
}

// ---------------------------------------------------------------------------------
// Signing keys and the master key

#[test]
fn keys_are_listed_and_rotated() {
    let env = Env::new();
    let master = env
        .run(&["key", "new-master-key"])
        .assert_ok()
        .stdout
        .clone();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(master.trim())
        .expect("base64");
    assert_eq!(bytes.len(), 32);

    let keys = env.run(&["key", "list", "--json"]).assert_ok().json();
    let keys = keys.as_array().expect("an array");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["state"], "signing");
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["private"], true);

    let new = env
        .run(&["key", "rotate", "--publish-ahead", "2h", "--json"])
        .assert_ok()
        .json();
    assert_eq!(new["state"], "next");
    assert_eq!(
        new["activates_at"].as_i64().unwrap() - new["created_at"].as_i64().unwrap(),
        7200
    );
    let keys = env.run(&["key", "list", "--json"]).assert_ok().json();
    let states: Vec<_> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, vec!["signing", "next"]);
    let text = env.run(&["key", "list"]).assert_ok().stdout.clone();
    assert!(text.contains(new["kid"].as_str().unwrap()), "{text}");

    // Another master key does not open the keys: refused, not silently replaced.
    let other = env.run_with(
        &["key", "list"],
        &[("TESSERA_MASTER_KEY", master.trim())],
        None,
    );
    other.assert_fails();
    assert!(
        other
            .stderr
            .contains("the master key does not open signing key"),
        "{}",
        other.stderr
    );
}

#[test]
fn postgres_without_a_master_key_is_refused() {
    let env = Env::new();
    let out = env.run(&[
        "--database-url",
        "postgres://root@127.0.0.1:1/none",
        "key",
        "list",
    ]);
    out.assert_fails();
    assert!(
        out.stderr
            .contains("a master key is required with PostgreSQL: set TESSERA_MASTER_KEY"),
        "{}",
        out.stderr
    );
    let bad = env.run_with(
        &["key", "list"],
        &[("TESSERA_MASTER_KEY", "c2hvcnQ=")],
        None,
    );
    bad.assert_fails();
    assert!(
        bad.stderr.contains("must be 32 bytes, not 5"),
        "{}",
        bad.stderr
    );
}
