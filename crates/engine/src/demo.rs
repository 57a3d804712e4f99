//! `envline demo`: a small but realistic GitOps repository (kustomize
//! `base/`, `envs/<env>/`, `variants/`) with the seed's pipeline, a few dozen
//! commits of history and environments at different depths of the line.

use std::path::{Path, PathBuf};

use gix::ObjectId;

use super::git::{GitError, GitRepo, Person, RefChange};

/// The seed's environments: (name, from, variants its kustomization lists).
pub const ENVIRONMENTS: &[(&str, &str, &[&str])] = &[
    ("qa", "main", &["non-prod"]),
    ("integration", "qa", &["non-prod"]),
    ("loadtest", "qa", &["non-prod"]),
    ("staging-eu", "integration", &["non-prod", "eu"]),
    ("staging-us", "integration", &["non-prod", "us"]),
    ("staging-asia", "integration", &["non-prod", "asia"]),
    ("prod-eu", "staging-eu", &["prod", "eu"]),
    ("prod-us", "staging-us", &["prod", "us"]),
    ("prod-asia", "staging-asia", &["prod", "asia"]),
];

/// The configuration file the demo writes next to its repository.
pub fn config_text() -> String {
    let mut text = String::from(
        "# Envline demo configuration, written by `envline demo`.\n\
         [repository]\nurl = \"remote.git\"\nroot = \"main\"\nrefresh_seconds = 10\n\n\
         [server]\nlisten = \"127.0.0.1:3000\"\ndata_dir = \"data\"\n\n\
         [auth]\n# The demo shows its pipeline without logging in; changes still need a user.\nanonymous_read = true\n",
    );
    for (name, from, _) in ENVIRONMENTS {
        text.push_str(&format!(
            "\n[[environment]]\nname = \"{name}\"\nfrom = \"{from}\"\n"
        ));
        match *name {
            "qa" => text.push_str("auto_promote = true\n"),
            n if n.starts_with("staging-") => {
                text.push_str("requires = [\"integration\", \"loadtest\"]\n")
            }
            n if n.starts_with("prod-") => text.push_str("approvals = 2\nprotected = true\n"),
            _ => {}
        }
    }
    text
}

fn deployment(version: &str, probe: bool) -> String {
    let probe = if probe {
        "        readinessProbe:\n          httpGet:\n            path: /healthz\n            port: 8080\n"
    } else {
        ""
    };
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop-api\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: shop-api\n  template:\n    metadata:\n      labels:\n        app: shop-api\n    spec:\n      containers:\n      - name: shop-api\n        image: ghcr.io/acme/shop-api:{version}\n        ports:\n        - containerPort: 8080\n{probe}"
    )
}

fn env_kustomization(name: &str, variants: &[&str]) -> String {
    let namespace = if name.starts_with("prod-") {
        "prod"
    } else {
        name
    };
    let mut text = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\nnamespace: {namespace}\nnamePrefix: {name}-\n\nresources:\n- ../../base\n\ncomponents:\n"
    );
    for v in variants {
        text.push_str(&format!("  - ../../variants/{v}\n"));
    }
    text.push_str("\npatches:\n- path: settings.yml\n- path: replicas.yml\n");
    text
}

fn env_settings(name: &str, log_level: &str, cache: &str) -> String {
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop-api\nspec:\n  template:\n    spec:\n      containers:\n      - name: shop-api\n        env:\n        - name: ENV\n          value: \"{name}\"\n        - name: LOG_LEVEL\n          value: \"{log_level}\"\n        - name: CACHE_SIZE\n          value: \"{cache}\"\n"
    )
}

fn replicas(n: u32) -> String {
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop-api\nspec:\n  replicas: {n}\n"
    )
}

fn variant(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n\npatches:\n- patch: |-\n    - op: add\n      path: /spec/template/metadata/labels/variant\n      value: {name}\n    target:\n      kind: Deployment\n{extra}"
    )
}

fn initial_files() -> Vec<(String, String)> {
    let mut files = vec![
        ("base/kustomization.yml".to_string(), "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\nresources:\n- deployment.yml\n- service.yml\n".to_string()),
        ("base/deployment.yml".to_string(), deployment("1.4.0", false)),
        ("base/service.yml".to_string(), "apiVersion: v1\nkind: Service\nmetadata:\n  name: shop-api\nspec:\n  type: ClusterIP\n  selector:\n    app: shop-api\n  ports:\n  - protocol: TCP\n    port: 80\n    targetPort: 8080\n".to_string()),
        ("README.md".to_string(), "# acme/gitops\n\nBranch-per-environment GitOps repository for shop-api, promoted with Envline.\n".to_string()),
    ];
    for v in ["prod", "non-prod", "eu", "us", "asia"] {
        files.push((format!("variants/{v}/kustomization.yml"), variant(v, "")));
    }
    for (name, _, variants) in ENVIRONMENTS {
        files.push((
            format!("envs/{name}/kustomization.yml"),
            env_kustomization(name, variants),
        ));
        files.push((
            format!("envs/{name}/settings.yml"),
            env_settings(name, "info", "512kb"),
        ));
        let n = if name.starts_with("prod-") {
            6
        } else if name.starts_with("staging-") {
            2
        } else {
            1
        };
        files.push((format!("envs/{name}/replicas.yml"), replicas(n)));
    }
    files
}

/// Creates the demo in `dir` (`remote.git` and `envline.toml`) unless it
/// exists; returns the configuration file's path.
pub fn create(dir: &Path) -> Result<PathBuf, GitError> {
    let config = dir.join("envline.toml");
    let remote = dir.join("remote.git");
    if config.exists() && remote.join("HEAD").exists() {
        return Ok(config);
    }
    std::fs::create_dir_all(dir).map_err(|e| GitError::Repository(e.into()))?;
    if remote.exists() {
        std::fs::remove_dir_all(&remote).map_err(|e| GitError::Repository(e.into()))?;
    }
    let git = GitRepo::init_bare(&remote)?;
    let line = write_history(&git, chrono::Utc::now().timestamp())?;
    let n = line.len();
    // Where each branch sits, counted back from the tip of main.
    let behind = |name: &str| -> usize {
        match name {
            "main" => 0,
            "qa" => 1,
            "integration" => 4,
            "loadtest" => 5,
            "staging-eu" | "staging-us" => 9,
            "staging-asia" => 11,
            "prod-eu" | "prod-us" => 14,
            "prod-asia" => 17,
            _ => 0,
        }
    };
    let mut changes = vec![RefChange {
        branch: "main".into(),
        old: None,
        new: line[n - 1],
    }];
    for (name, _, _) in ENVIRONMENTS {
        changes.push(RefChange {
            branch: (*name).into(),
            old: None,
            new: line[n - 1 - behind(name)],
        });
    }
    git.update_refs(&changes, "demo", "envline demo")?;
    std::fs::write(&config, config_text()).map_err(|e| GitError::Repository(e.into()))?;
    Ok(config)
}

/// One step of the demo's story: a subject, the files it writes (given the
/// round and whether the probe exists), and its author (none: the build bot).
type Step<'a> = (
    &'a str,
    Box<dyn Fn(u32, bool) -> Vec<(String, String)>>,
    Option<(&'a str, &'a str)>,
);

/// Writes the demo's history of `main`; returns the commits oldest first.
pub fn write_history(git: &GitRepo, now: i64) -> Result<Vec<ObjectId>, GitError> {
    let dev = |name: &str, email: &str, t: i64| Person {
        name: name.into(),
        email: email.into(),
        time: Some(t),
    };
    let bot = |t: i64| Person {
        name: "build-bot".into(),
        email: "build-bot@acme.example".into(),
        time: Some(t),
    };
    let start = now - 32 * 86_400;
    let mut t = start;
    let mut line = Vec::new();
    let files = initial_files();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let mut parent = git.commit_files(
        None,
        &refs,
        "Initial GitOps layout: base, envs, variants",
        &dev("Maria Jansen", "maria@acme.example", t),
    )?;
    line.push(parent);
    let mut minor = 0;
    let mut probe = false;
    let steps: Vec<Step> = vec![
        ("bump", Box::new(|_, _| vec![]), None),
        (
            "qa: debug logging while chasing the checkout timeout",
            Box::new(|round, _| {
                vec![(
                    "envs/qa/settings.yml".into(),
                    env_settings("qa", if round % 2 == 0 { "debug" } else { "info" }, "512kb"),
                )]
            }),
            Some(("Tom Berg", "tom@acme.example")),
        ),
        ("bump", Box::new(|_, _| vec![]), None),
        (
            "prod: add the PodDisruptionBudget label to every production environment",
            Box::new(|_, _| {
                vec![(
                    "variants/prod/kustomization.yml".into(),
                    variant(
                        "prod",
                        "- patch: |-\n    - op: add\n      path: /metadata/labels/pdb\n      value: required\n    target:\n      kind: Deployment\n",
                    ),
                )]
            }),
            Some(("Maria Jansen", "maria@acme.example")),
        ),
        ("bump", Box::new(|_, _| vec![]), None),
        (
            "staging-asia: 3 replicas to match the new traffic pattern",
            Box::new(|_, _| vec![("envs/staging-asia/replicas.yml".into(), replicas(3))]),
            Some(("Kenji Sato", "kenji@acme.example")),
        ),
        ("bump", Box::new(|_, _| vec![]), None),
        (
            "all environments: readiness probe on /healthz",
            Box::new(|_, _| vec![]),
            Some(("Tom Berg", "tom@acme.example")),
        ),
        ("bump", Box::new(|_, _| vec![]), None),
        (
            "prod-eu: larger cache for the EU catalogue",
            Box::new(|round, _| {
                vec![(
                    "envs/prod-eu/settings.yml".into(),
                    env_settings("prod-eu", "info", &format!("{}kb", 1024 * (round + 2))),
                )]
            }),
            Some(("Ana Costa", "ana@acme.example")),
        ),
        ("bump", Box::new(|_, _| vec![]), None),
        (
            "qa: same replica count as staging-asia to reproduce the latency issue",
            Box::new(|_, _| vec![("envs/qa/replicas.yml".into(), replicas(3))]),
            Some(("Kenji Sato", "kenji@acme.example")),
        ),
        ("bump", Box::new(|_, _| vec![]), None),
        (
            "non-prod: shorter log retention",
            Box::new(|_, _| {
                vec![(
                    "variants/non-prod/kustomization.yml".into(),
                    variant(
                        "non-prod",
                        "- patch: |-\n    - op: add\n      path: /metadata/annotations/log-retention\n      value: 3d\n    target:\n      kind: Deployment\n",
                    ),
                )]
            }),
            Some(("Ana Costa", "ana@acme.example")),
        ),
    ];
    // Three rounds of the steps: a few dozen commits in all.
    for round in 0..3 {
        for (subject, files_of, author) in &steps {
            t += 17 * 3600 + (line.len() as i64 % 5) * 1800;
            let (subject, files, person) = if *subject == "bump" {
                minor += 1;
                let version = format!("1.{}.{}", 4 + round, minor);
                (
                    format!("build-bot: shop-api {version}"),
                    vec![(
                        "base/deployment.yml".to_string(),
                        deployment(&version, probe),
                    )],
                    bot(t),
                )
            } else if subject.starts_with("all environments") {
                if round > 0 {
                    continue;
                }
                probe = true;
                let version = format!("1.{}.{}", 4 + round, minor);
                (
                    subject.to_string(),
                    vec![(
                        "base/deployment.yml".to_string(),
                        deployment(&version, probe),
                    )],
                    dev(author.unwrap().0, author.unwrap().1, t),
                )
            } else {
                if round > 0 && !subject.starts_with("prod-eu") && !subject.starts_with("qa: debug")
                {
                    continue;
                }
                let (name, email) = author.unwrap();
                let subject = match (round, subject.split(':').next()) {
                    (0, _) => subject.to_string(),
                    (1, Some("qa")) => "qa: back to info logging".to_string(),
                    (_, Some("qa")) => "qa: debug logging for the payment retries".to_string(),
                    (r, _) => format!(
                        "prod-eu: cache size {}kb for the seasonal peak",
                        1024 * (r + 2)
                    ),
                };
                (subject, files_of(round, probe), dev(name, email, t))
            };
            let refs: Vec<(&str, &str)> = files
                .iter()
                .map(|(p, c)| (p.as_str(), c.as_str()))
                .collect();
            let mut refs = refs;
            let marker = format!("changed at round {round}, step {}\n", line.len());
            let extra_path = if refs.is_empty() {
                Some("CHANGELOG.md")
            } else {
                None
            };
            if let Some(p) = extra_path {
                refs.push((p, marker.as_str()));
            }
            parent = git.commit_files(Some(parent), &refs, &subject, &person)?;
            line.push(parent);
        }
    }
    Ok(line)
}
