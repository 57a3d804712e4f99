//! A real Envline server on a temporary demo repository, driven over HTTP.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_envline");

#[path = "../../../crates/engine/tests/support/postgres.rs"]
pub mod postgres;

/// A temporary demo repository (the seed's pipeline) and a server on it.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub remote: PathBuf,
    pub addr: String,
    pub child: Option<Child>,
    pub extra_env: Vec<(String, String)>,
    /// Where the server's standard error goes (the terminal when `None`).
    pub log: Option<PathBuf>,
    /// Its database on the tests' PostgreSQL, when they run on one (dropped
    /// after the server stops).
    pub database: Option<postgres::TestDatabase>,
}

/// A port nothing listens on now, never one handed out before in this
/// test process: a server's port is chosen before it binds, so a git daemon
/// asking next must not be given the same one.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Runs git on a bare repository and returns its output.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir").arg(dir);
    run_git(cmd, args)
}

/// Runs git in a work tree as a person outside Envline would.
pub fn git_in(work: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(work)
        .args(["-c", "user.name=Eve", "-c", "user.email=eve@example.com"]);
    run_git(cmd, args)
}

fn run_git(mut cmd: Command, args: &[&str]) -> String {
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl TestServer {
    /// Creates the demo repository and configuration; does not start the server.
    pub fn new() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(BIN)
            .args(["demo", "--no-serve", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = dir.path().join("envline.toml");
        let remote = dir.path().join("remote.git");
        TestServer::on(dir, config, remote)
    }

    /// A server (not started) on the configuration `config` in `dir`, whose
    /// remote is `remote`; on the tests' PostgreSQL when they run on one.
    pub fn on(dir: tempfile::TempDir, config: PathBuf, remote: PathBuf) -> TestServer {
        // The file, not the server's environment: the command line's
        // `user add` and `audit verify` must find the same database.
        let database = postgres::TestDatabase::new();
        if let Some(database) = &database {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&config)
                .unwrap();
            writeln!(file, "\n[database]\nurl = \"{}\"", database.url).unwrap();
        }
        TestServer {
            database,
            config,
            remote,
            addr: format!("127.0.0.1:{}", free_port()),
            child: None,
            dir,
            extra_env: vec![],
            log: None,
        }
    }

    /// Another replica of this server (not started): the same configuration,
    /// database and remote, a data directory (and clone) of its own, as a
    /// second machine behind a load balancer would have.
    pub fn replica(&self) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        TestServer {
            database: None,
            config: self.config.clone(),
            remote: self.remote.clone(),
            addr: format!("127.0.0.1:{}", free_port()),
            child: None,
            extra_env: vec![(
                "ENVLINE_SERVER_DATA_DIR".into(),
                data.to_string_lossy().into_owned(),
            )],
            log: None,
            dir,
        }
    }

    /// Runs an `envline` subcommand with this server's configuration.
    pub fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("ENVLINE_PASSWORD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Creates a user with roles and returns a new token for it.
    pub fn user(&self, name: &str, roles: &[&str]) -> String {
        let mut args = vec!["user", "add", name];
        for r in roles {
            args.push("--role");
            args.push(r);
        }
        let out = self.cli(&args, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = self.cli(&["token", "create", "--user", name], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    pub fn start_with(&mut self, env: &[(&str, &str)]) {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("ENVLINE_SERVER_LISTEN", &self.addr)
            .env("ENVLINE_AUTH_ANONYMOUS_READ", "false")
            .env("ENVLINE_REPOSITORY_REFRESH_SECONDS", "3600")
            .env("ENVLINE_LOG", "warn")
            // Auto-promotion would move qa under the tests' feet; tests that want it turn it on.
            .env("ENVLINE_ENVIRONMENT_QA_AUTO_PROMOTE", "false")
            .stdout(Stdio::null())
            .stderr(match &self.log {
                Some(file) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(file)
                        .unwrap(),
                ),
                None => Stdio::inherit(),
            });
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The server listens only once the engine has started.
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited: {status}");
            }
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the server to exit (after an injected crash); returns whether it was killed by a signal.
    pub fn wait_exit(&mut self) -> bool {
        let mut child = self.child.take().unwrap();
        let status = child.wait().unwrap();
        !status.success()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Opens the server's database as someone with access to it would
    /// (to look at rows, or to tamper with them).
    pub async fn open_database(&self) -> envline_engine::store::Pool {
        let config =
            envline_engine::config::Config::load(&self.config, &Default::default()).unwrap();
        envline_engine::store::open(&config.database())
            .await
            .unwrap()
    }

    /// Opens the database and removes the audit log's append-only triggers,
    /// as its owner could: what the chain's hashes and the anchor must catch.
    pub async fn open_database_unguarded(&self) -> envline_engine::store::Pool {
        let pool = self.open_database().await;
        let on = match envline_engine::store::backend(&pool) {
            envline_engine::store::Backend::Sqlite => "",
            envline_engine::store::Backend::Postgres => " ON audit_events",
        };
        for trigger in [
            "audit_events_append_only_update",
            "audit_events_append_only_delete",
        ] {
            sqlx::query(&format!("DROP TRIGGER IF EXISTS {trigger}{on}"))
                .execute(&pool)
                .await
                .unwrap();
        }
        pool
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn remote_tip(&self, branch: &str) -> String {
        git(
            &self.remote,
            &["rev-parse", &format!("refs/heads/{branch}")],
        )
    }

    /// A working clone of the remote on `main`, in `name` under the test's
    /// folder: someone outside Envline who commits and pushes.
    pub fn work_clone(&self, name: &str) -> PathBuf {
        let work = self.dir.path().join(name);
        git(
            self.dir.path(),
            &[
                "clone",
                "-q",
                "-b",
                "main",
                self.remote.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        );
        work
    }

    pub fn clone_tip(&self, branch: &str) -> String {
        git(
            &self.dir.path().join("data/repository.git"),
            &["rev-parse", &format!("refs/heads/{branch}")],
        )
    }

    pub fn all_remote_tips(&self) -> String {
        git(
            &self.remote,
            &[
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                "refs/heads",
            ],
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        // Then `database` drops its database.
    }
}

/// A tiny HTTP client over reqwest.
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(server: &TestServer) -> Api {
        Api {
            client: reqwest::Client::new(),
            base: format!("http://{}", server.addr),
        }
    }

    /// A GET whose answer is text (`/metrics`), as `token`.
    pub async fn get_text(&self, path: &str, token: &str) -> String {
        self.client
            .get(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        Self::send(self.client.get(format!("{}{}", self.base, path)), token).await
    }

    async fn send(mut req: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Posts a request during which the server is meant to die (an injected
    /// crash); true when it did (no answer came).
    pub async fn post_and_die(&self, path: &str, token: &str, body: Value) -> bool {
        self.client
            .post(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .is_err()
    }

    /// `POST /api/v1/promotions`.
    pub async fn promote(&self, token: &str, body: Value) -> (u16, Value) {
        self.post("/api/v1/promotions", Some(token), body).await
    }

    /// Records a verification of `commit` in `environment`.
    pub async fn verify(
        &self,
        token: &str,
        environment: &str,
        commit: &str,
        status: &str,
    ) -> (u16, Value) {
        let body =
            serde_json::json!({"environment": environment, "commit": commit, "status": status});
        self.post("/api/v1/verifications", Some(token), body).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        Self::send(self.client.delete(format!("{}{}", self.base, path)), token).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.post_raw(path, token, body.to_string()).await
    }

    pub async fn post_raw(&self, path: &str, token: Option<&str>, body: String) -> (u16, Value) {
        let req = self
            .client
            .post(format!("{}{}", self.base, path))
            .header("content-type", "application/json")
            .body(body);
        Self::send(req, token).await
    }
}

/// A `git daemon` on 127.0.0.1, stopped when dropped.
pub struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `git daemon` on 127.0.0.1 serving the test's folder (receive-pack on): a
/// remote in processes of its own, as a real one is.
pub fn daemon(base: &std::path::Path, port: u16) -> Daemon {
    let exec_path = String::from_utf8(
        Command::new("git")
            .arg("--exec-path")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let child = Command::new(std::path::Path::new(exec_path.trim()).join("git-daemon"))
        .args([
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Daemon(child)
}

/// Installs a hook script in the test's remote.
pub fn hook(server: &TestServer, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = server.remote.join("hooks").join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A browser-like client: keeps cookies, says where its requests come from.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

impl Browser {
    pub fn new(server: &TestServer) -> Browser {
        Browser::from_address(server, None)
    }

    /// A browser on another machine: its connections come from `local`
    /// (any address of 127.0.0.0/8 works on loopback).
    pub fn from_address(server: &TestServer, local: Option<std::net::IpAddr>) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .local_address(local)
                .build()
                .unwrap(),
            base: format!("http://{}", server.addr),
        }
    }

    /// Calls a server function as the hydrated page does (`fetch` from our origin).
    pub async fn call(&self, name: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.call_from(name, form, Some(&self.base.clone())).await
    }

    pub async fn call_from(
        &self,
        name: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/fn/{name}", self.base))
            .header("accept", "application/json")
            .form(form);
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn sign_in(&self, user: &str, password: &str) -> (u16, Value) {
        self.call("sign_in", &[("user", user), ("password", password)])
            .await
    }
}

/// Creates a user with a password.
pub fn person(server: &TestServer, name: &str, roles: &[&str], password: &str) {
    let mut args = vec!["user", "add", name];
    for r in roles {
        args.extend(["--role", r]);
    }
    let out = server.cli(&args, &[("ENVLINE_PASSWORD", password)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
