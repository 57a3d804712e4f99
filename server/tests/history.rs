//! A team adopting Envline on a repository with a long history full of merge
//! commits still gets a light pipeline page: merges are counted, and only
//! those not yet in every environment, with the newest few named.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{TestServer, git};

/// The fixture repository's environments: (name, from, commits behind main).
const ENVIRONMENTS: &[(&str, &str, usize)] = &[
    ("qa", "main", 2),
    ("integration-gpu", "qa", 4),
    ("integration-non-gpu", "qa", 4),
    ("load-gpu", "qa", 6),
    ("load-non-gpu", "qa", 6),
    ("staging-eu", "integration-gpu", 10),
    ("staging-us", "integration-gpu", 10),
    ("staging-asia", "integration-gpu", 12),
    ("prod-eu", "staging-eu", 20),
    ("prod-us", "staging-us", 20),
    ("prod-asia", "staging-asia", 30),
];

/// A bare repository whose `main` has `merges` merge commits on its
/// first-parent line (each merging a one-commit side branch), made with
/// `git fast-import`; environments sit `behind` first-parent commits back.
fn repository_with_merges(dir: &Path, merges: usize) {
    git_ok(Command::new("git").args(["init", "-q", "--bare"]).arg(dir));
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufWriter::new(child.stdin.take().unwrap());
    let who = |t: usize| format!("Dev <dev@example.com> {} +0000", 1_600_000_000 + t * 60);
    writeln!(
        out,
        "commit refs/heads/main\nmark :1\ncommitter {}\ndata 7\ninitial\nM 644 inline base/deployment.yml\ndata 11\nimage: 1.0\n",
        who(0)
    )
    .unwrap();
    let mut main = 1;
    for i in 0..merges {
        let side = 2 * i + 2;
        let merge = side + 1;
        let path = format!("envs/qa/feature-{}.yml", i % 50);
        writeln!(
            out,
            "commit refs/heads/side\nmark :{side}\ncommitter {}\ndata 10\nfeature {:02}\nfrom :{main}\nM 644 inline {path}\ndata 3\n{:02}\n",
            who(side),
            i % 100,
            i % 100
        )
        .unwrap();
        let subject = format!("Merge pull request #{i}");
        writeln!(
            out,
            "commit refs/heads/main\nmark :{merge}\ncommitter {}\ndata {}\n{subject}\nfrom :{main}\nmerge :{side}\nM 644 inline {path}\ndata 3\n{:02}\n",
            who(merge),
            subject.len(),
            i % 100
        )
        .unwrap();
        main = merge;
    }
    drop(out);
    assert!(child.wait().unwrap().success());
    for (name, _, behind) in ENVIRONMENTS {
        let at = git(dir, &["rev-parse", &format!("main~{behind}")]);
        git(dir, &["update-ref", &format!("refs/heads/{name}"), &at]);
    }
    git(dir, &["update-ref", "-d", "refs/heads/side"]);
}

fn git_ok(cmd: &mut Command) {
    assert!(cmd.status().unwrap().success());
}

fn server_on(remote: &Path, dir: tempfile::TempDir) -> TestServer {
    let mut config = format!(
        "[repository]\nurl = \"{}\"\nroot = \"main\"\n\n[server]\ndata_dir = \"data\"\n\n[auth]\nanonymous_read = true\n",
        remote.display()
    );
    for (name, from, _) in ENVIRONMENTS {
        config.push_str(&format!(
            "\n[[environment]]\nname = \"{name}\"\nfrom = \"{from}\"\n"
        ));
        if name.starts_with("prod-") {
            config.push_str("approvals = 2\nprotected = true\n");
        }
    }
    let file = dir.path().join("envline.toml");
    std::fs::write(&file, config).unwrap();
    let mut server = TestServer::on(dir, file, remote.to_owned());
    server.extra_env = vec![("ENVLINE_AUTH_ANONYMOUS_READ".into(), "true".into())];
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_merges_on_main_still_give_a_light_pipeline_page() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("remote.git");
    repository_with_merges(&remote, 4000);
    let mut server = server_on(&remote, dir);
    server.start();
    let api = common::Api::new(&server);

    let (status, body) = api.get("/api/v1/environments", None).await;
    assert_eq!(status, 200, "{body}");
    let merges = &body["merges"];
    // The lowest environment (prod-asia) is 30 first-parent commits behind
    // main, every one of them a merge: those are the ones anyone can act on.
    assert_eq!(merges["count"], 30, "{merges}");
    let named = merges["newest"].as_array().unwrap();
    assert_eq!(named.len(), 5);
    assert_eq!(named[0]["subject"], "Merge pull request #3999");
    let json = body.to_string();
    assert!(
        json.len() < 40_000,
        "environments JSON is {} bytes",
        json.len()
    );

    let page = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.len() < 60_000,
        "the pipeline page is {} bytes for {} environments",
        html.len(),
        ENVIRONMENTS.len() + 1
    );
    assert!(html.contains("30 merge commits on main not yet in every environment"));
    for (name, _, _) in ENVIRONMENTS {
        assert!(html.contains(&format!("data-env=\"{name}\"")), "{name}");
    }
}
