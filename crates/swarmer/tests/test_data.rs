//! End-to-end tests of test data across a cluster, through the binary: a
//! master and two workers of two cores each, against a loopback server
//! that notes what the users asked for.
//!
//! `self.index`: every user's index is unique while it lives, also while
//! a worker joins and the users move. `unique` feeders: no row reaches the
//! server twice, and more demand than rows is reported by name.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::{Master, worker};
use common::{TempDir, poll, serial};

const LONG: Duration = Duration::from_secs(60);

/// What the server saw: every request path in order, the indexes of the
/// users alive now (`/start?i=` adds, `/stop?i=` removes), and the
/// indexes that started while a user with the same index was alive.
#[derive(Default)]
struct Seen {
    paths: Vec<String>,
    alive: BTreeSet<u32>,
    twice: Vec<u32>,
    started: BTreeMap<u32, u32>,
}

/// A tiny keep-alive HTTP/1.1 server on a free loopback port, answering
/// 200 to everything.
fn server() -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let seen = shared.clone();
            std::thread::spawn(move || serve(conn, &seen));
        }
    });
    (url, seen)
}

fn serve(conn: TcpStream, seen: &Mutex<Seen>) {
    let mut out = conn.try_clone().expect("clone");
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
        }
        note(seen, path);
        if out
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn note(seen: &Mutex<Seen>, path: String) {
    let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
    let index = path
        .split_once("?i=")
        .and_then(|(_, i)| i.parse::<u32>().ok());
    if let Some(i) = index {
        if path.starts_with("/start") {
            *s.started.entry(i).or_default() += 1;
            if !s.alive.insert(i) {
                s.twice.push(i);
            }
        } else if path.starts_with("/stop") {
            s.alive.remove(&i);
        }
    }
    s.paths.push(path);
}

fn seen<T>(seen: &Mutex<Seen>, f: impl FnOnce(&Seen) -> T) -> T {
    f(&seen.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Waits for 12 users to start, then checks no 13th does, no index was
/// alive twice and the indexes are exactly 1..=12. Returns how many times
/// each index started.
fn twelve_users_with_indexes_one_to_twelve(log: &Mutex<Seen>) -> BTreeMap<u32, u32> {
    let all = poll(LONG, || {
        seen(log, |s| (s.started.len() == 12).then(|| s.started.clone()))
    })
    .unwrap_or_else(|| {
        panic!(
            "12 users start; seen {:?}",
            seen(log, |s| s.started.clone())
        )
    });
    // A moment more for a 13th start, which must not come.
    std::thread::sleep(Duration::from_millis(500));
    seen(log, |s| {
        assert_eq!(s.started, all, "no other user started");
        assert!(s.twice.is_empty(), "indexes alive twice: {:?}", s.twice);
    });
    assert_eq!(
        all.keys().copied().collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    all
}

const INDEXED: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.05) }
function U:on_start() self.http:get("/start?i=" .. self.index) end
function U:on_stop() self.http:get("/stop?i=" .. self.index) end
U:task(function(self) self.http:get("/task") end)
"#;

#[test]
fn every_user_of_the_cluster_has_its_own_index_from_one() {
    let _serial = serial();
    let dir = TempDir::new("index");
    let script = dir.write("users.lua", INDEXED);
    let (url, log) = server();
    let master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "-H",
            &url,
            "-u",
            "12",
            "-r",
            "100",
            "-t",
            "60s",
            "--expect-workers",
            "2",
        ],
    );
    let _w1 = worker(dir.path(), master.port, "w1", &["--cores", "2"]);
    let _w2 = worker(dir.path(), master.port, "w2", &["--cores", "2"]);
    let all = twelve_users_with_indexes_one_to_twelve(&log);
    assert!(all.values().all(|&n| n == 1), "{all:?}");
}

#[test]
fn indexes_stay_unique_while_a_joining_worker_takes_users_over() {
    let _serial = serial();
    let dir = TempDir::new("index-join");
    let script = dir.write("users.lua", INDEXED);
    let (url, log) = server();
    let master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "-H",
            &url,
            "-u",
            "8",
            "-r",
            "100",
            "-t",
            "60s",
            "--expect-workers",
            "1",
            "--stop-timeout",
            "5s",
        ],
    );
    let _w1 = worker(dir.path(), master.port, "w1", &["--cores", "2"]);
    poll(LONG, || seen(&log, |s| (s.alive.len() == 8).then_some(()))).expect("8 users start on w1");
    let _w2 = worker(dir.path(), master.port, "w2", &["--cores", "2"]);
    // w1 stops 4 of its users and w2 starts 4: 12 starts, 4 stops.
    poll(LONG, || {
        seen(&log, |s| {
            let starts: u32 = s.started.values().sum();
            (starts == 12 && s.alive.len() == 8).then_some(())
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "w2 takes 4 users over; seen {:?}",
            seen(&log, |s| (s.started.clone(), s.alive.clone()))
        )
    });
    seen(&log, |s| {
        assert!(s.twice.is_empty(), "indexes alive twice: {:?}", s.twice);
        // The 4 of w1 may still have been stopping when w2 started: at
        // most peak + those.
        assert!(
            s.alive.iter().all(|&i| (1..=12).contains(&i)),
            "{:?}",
            s.alive
        );
    });
}

/// Closed users and an arrival pool side by side: the pool's users take
/// indexes from the same run-wide set.
const WITH_ARRIVALS: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.05) }
function U:on_start() self.http:get("/start?i=" .. self.index) end
U:task(function(self) self.http:get("/task") end)
local Api = swarmer.user {
  name = "Api",
  arrivals = { rate = 200, per = "1s", pre_allocated = 8, max_users = 8 },
}
function Api:on_start() self.http:get("/start?i=" .. self.index) end
Api:task(function(self) swarmer.sleep(0.2) end)
"#;

#[test]
fn arrival_driven_users_have_indexes_of_the_same_run_wide_set() {
    let _serial = serial();
    let dir = TempDir::new("index-arrivals");
    let script = dir.write("users.lua", WITH_ARRIVALS);
    let (url, log) = server();
    let master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "-H",
            &url,
            "-u",
            "4",
            "-r",
            "100",
            "-t",
            "60s",
            "--expect-workers",
            "2",
        ],
    );
    let _w1 = worker(dir.path(), master.port, "w1", &["--cores", "2"]);
    let _w2 = worker(dir.path(), master.port, "w2", &["--cores", "2"]);
    // 4 closed users and a pool of 8 (pre-allocated, and 200 arrivals a
    // second of 200 ms each keep it full): 12 users, 12 indexes.
    twelve_users_with_indexes_one_to_twelve(&log);
}

const UNIQUE_ROWS: &str = r#"
local rows = {}
for i = 1, 40 do rows[i] = { n = tostring(i) } end
local accounts = swarmer.feeder(rows, { strategy = "unique", name = "accounts" })
local U = swarmer.user { name = "U", wait = swarmer.constant(0.02) }
U:task(function(self)
  local row = accounts:next()
  self.http:get("/row?n=" .. row.n)
end)
"#;

#[test]
fn a_unique_feeder_hands_every_row_out_once_across_the_cluster_and_says_when_it_runs_out() {
    let _serial = serial();
    let dir = TempDir::new("unique");
    let script = dir.write("users.lua", UNIQUE_ROWS);
    let (url, log) = server();
    let mut master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "-H",
            &url,
            "-u",
            "8",
            "-r",
            "100",
            "-t",
            "4s",
            "--expect-workers",
            "2",
        ],
    );
    let _w1 = worker(dir.path(), master.port, "w1", &["--cores", "2"]);
    let _w2 = worker(dir.path(), master.port, "w2", &["--cores", "2"]);
    master.proc.wait_exit(LONG).expect("the run ends");
    let rows: Vec<String> = seen(&log, |s| {
        s.paths
            .iter()
            .filter_map(|p| p.strip_prefix("/row?n="))
            .map(str::to_string)
            .collect()
    });
    let distinct: BTreeSet<u32> = rows.iter().filter_map(|n| n.parse().ok()).collect();
    assert_eq!(rows.len(), distinct.len(), "a row went out twice: {rows:?}");
    // 8 users every 20 ms for 4 s want far more than 40 rows: all go out
    // (the blocks are a row each at this size), then the feeder says so.
    assert_eq!(distinct, (1..=40).collect(), "{rows:?}");
    master.proc.expect_line(
        LONG,
        "feeder \"accounts\" (unique): all 40 rows are used across the run",
    );
}
