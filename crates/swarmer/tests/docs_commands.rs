//! Every `swarmer` command in a shell block of README.md and docs/*.md,
//! run with the built binary, so the docs cannot drift from it again.
//!
//! Runs are shortened and aimed at a demo target: `-t 2s` replaces any run
//! time, `--headless` is added (and `--autostart` dropped), `--demo-target`
//! is added unless `-H` aims elsewhere, and a master gets a free worker
//! port. A run passes when it ends with exit code 0 or 1 and its verdict
//! line shows requests were made. Blocks that need something this test
//! cannot give are skipped by name with the reason, and the test fails if
//! there is nothing left to run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, free_port, text, wait_with_deadline};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The commands of the shell blocks of one Markdown file, as words, with
/// the line number of each. `cargo run --release --` counts as `swarmer`.
fn commands(markdown: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut in_shell = false;
    let mut in_block = false;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(lang) = trimmed.strip_prefix("```") {
            in_shell = !in_block && matches!(lang, "sh" | "bash" | "shell" | "console" | "");
            in_block = !in_block;
            continue;
        }
        if !in_shell {
            continue;
        }
        let command = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
        let command = match command.strip_prefix("cargo run --release -- ") {
            Some(rest) => format!("swarmer {rest}"),
            None => command.to_string(),
        };
        if command == "swarmer" || command.starts_with("swarmer ") {
            out.push((i + 1, words(&command)));
        }
    }
    out
}

/// Shell words, without the trailing `# comment`; `"$VAR"` becomes a
/// placeholder value (the docs use such variables for secrets).
fn words(command: &str) -> Vec<String> {
    let command = command.split(" #").next().unwrap_or(command);
    command
        .split_whitespace()
        .map(|w| {
            let w = w.trim_matches(|c| c == '"' || c == '\'');
            if w.starts_with('$') {
                "docs-test-secret".to_string()
            } else {
                w.to_string()
            }
        })
        .collect()
}

fn has(args: &[String], flag: &str) -> bool {
    args.iter()
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

/// Why a command cannot run here, if it cannot.
fn skip_reason(args: &[String]) -> Option<&'static str> {
    if has(args, "--worker") {
        return Some("a worker needs a master started in another terminal");
    }
    if has(args, "--master") && !has(args, "--workers") {
        return Some("a master waits for workers started in another terminal");
    }
    if args.get(1).is_some_and(|a| a == "demo-target") {
        return Some("the demo target serves until stopped");
    }
    None
}

/// The command shortened and aimed as the module comment says.
fn shortened(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-t" | "--run-time" | "--master-bind-port" => {
                rest.next();
            }
            "--autostart" => {}
            a if a.starts_with("--run-time=") || a.starts_with("--master-bind-port=") => {}
            _ => out.push(arg.clone()),
        }
    }
    out.extend(["-t".into(), "2s".into()]);
    if !has(args, "--headless") {
        out.push("--headless".into());
    }
    if !has(args, "--demo-target") && !has(args, "-H") && !has(args, "--host") {
        out.push("--demo-target".into());
    }
    if has(args, "--master") {
        out.extend(["--master-bind-port".into(), free_port().to_string()]);
    }
    out
}

fn run(args: &[String]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("SWARMER_") {
            cmd.env_remove(key);
        }
    }
    let out = wait_with_deadline(cmd.spawn().expect("start swarmer"), Duration::from_secs(90));
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Runs one documented command; the error says what went wrong.
fn check(args: &[String]) -> Result<(), String> {
    let is_run = args.iter().any(|a| a == "-f" || a == "--script")
        && args.get(1).is_none_or(|a| a.starts_with('-'));
    if !is_run {
        let (code, stdout, stderr) = run(&args[1..]);
        return match code {
            Some(0) => Ok(()),
            _ => Err(format!("exit {code:?}\n{stdout}\n{stderr}")),
        };
    }
    let args = shortened(args);
    let (code, stdout, stderr) = run(&args);
    let verdict = stdout.lines().last().unwrap_or_default();
    let ran = verdict.contains("→ exit code") && !verdict.starts_with("no request");
    if matches!(code, Some(0 | 1)) && ran {
        Ok(())
    } else {
        Err(format!("as {args:?}: exit {code:?}\n{stdout}\n{stderr}"))
    }
}

#[test]
fn every_documented_command_runs() {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let (mut ran, mut skipped, mut failed) = (0, Vec::new(), Vec::new());
    for file in &files {
        let markdown = std::fs::read_to_string(file).expect("read markdown");
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (line, args) in commands(&markdown) {
            let at = format!("{name}:{line}: {}", args.join(" "));
            if let Some(reason) = skip_reason(&args) {
                skipped.push(format!("{at} ({reason})"));
                continue;
            }
            ran += 1;
            if let Err(e) = check(&args) {
                failed.push(format!("{at}\n{e}"));
            }
        }
    }
    eprintln!("skipped:\n  {}", skipped.join("\n  "));
    assert!(
        failed.is_empty(),
        "documented commands fail:\n{}",
        failed.join("\n\n")
    );
    assert!(ran >= 4, "only {ran} documented commands ran");
}

#[test]
fn commands_are_read_from_shell_blocks_only() {
    let markdown = "```sh\n# a comment\nswarmer -f x.lua --master  # UI\ncargo run --release -- -f y.lua\n```\n\
                    ```lua\nswarmer.user {}\n```\nswarmer -f prose.lua\n";
    let found = commands(markdown);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0], (3, words("swarmer -f x.lua --master")));
    assert_eq!(found[1].1, words("swarmer -f y.lua"));
    let short = shortened(&words("swarmer -f x.lua -t 1h --autostart -u 5"));
    assert_eq!(short[..4], words("-f x.lua -u 5")[..]);
    assert!(
        has(&short, "--headless") && has(&short, "--demo-target"),
        "{short:?}"
    );
    assert_eq!(short.iter().filter(|a| *a == "-t").count(), 1);
}
