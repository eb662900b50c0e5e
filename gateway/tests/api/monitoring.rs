//! The monitoring files name only what the services export (issue 20): every metric of
//! `deploy/monitoring/rules.yaml` and `dashboard.json`, and every label their selectors match on,
//! is found on the gateway's or the reconciler's `/metrics` after some traffic: a payment, an
//! UNKNOWN the reconciler settles, one it cancels, a 429, webhooks that end abandoned, the daily
//! close of yesterday, an admin call without its token, a notification for no tenant.
//!
//! A series appears only after its first event, and a few events are too rare to make here (a
//! ledger too busy, a money contradiction, a refused bill file…): those names are listed in
//! [`EVENT_ONLY`] with why, and must then be found in a `metrics::counter!` / `gauge!` /
//! `histogram!` of the workspace's sources instead. `up` is Prometheus's own.
//!
//! The gateway runs as a process of its own (its `/metrics` holds its series only); the
//! reconciler runs in this process, beside the stack's idle gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use stack::*;
use tenants::model::{Dialect, Limits};

const RULES: &str = include_str!("../../../deploy/monitoring/rules.yaml");
const DASHBOARD: &str = include_str!("../../../deploy/monitoring/dashboard.json");

/// Series Prometheus makes itself, not the services.
const PROMETHEUS_OWN: &[&str] = &["up"];

/// Names the test's traffic cannot make cheaply, and what makes them.
const EVENT_ONLY: &[(&str, &str)] = &[
    ("gateway_ledger_busy_total", "a pool wait or statement timeout running out (ledger_busy.rs makes one)"),
    ("gateway_due_index_arm_failures_total", "Redis unreachable while a gateway arms an UNKNOWN"),
    ("reconciler_contradictions_total", "Alipay confirming a cancel of a trade the ledger holds final"),
    ("reconciler_store_errors_total", "a reconciler's ledger write failing"),
    ("reconciler_leases_lost_total", "a check outliving its lease"),
    ("bill_discrepancies_total", "a bill that disagrees with the ledger"),
    ("bill_files_refused_total", "a malformed or truncated bill"),
];

/// PromQL's functions, aggregations and keywords: identifiers that are not metric names.
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "avg",
    "avg_over_time",
    "bottomk",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count",
    "count_over_time",
    "count_values",
    "day_of_month",
    "day_of_week",
    "delta",
    "deriv",
    "exp",
    "floor",
    "group",
    "histogram_quantile",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log2",
    "log10",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "minute",
    "month",
    "predict_linear",
    "quantile",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev",
    "stddev_over_time",
    "stdvar",
    "sum",
    "sum_over_time",
    "time",
    "timestamp",
    "topk",
    "vector",
    "year",
];
const AGGREGATIONS: &[&str] =
    &["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values"];
/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
const OPERATORS: &[&str] = &["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"];

/// One vector selector: a metric and the label names it matches on.
#[derive(Debug)]
struct Selector {
    metric: String,
    labels: Vec<String>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The index after the group opened at `open` (`(`, `[` or `{`), strings inside skipped.
fn after_group(chars: &[char], open: usize) -> usize {
    let (opening, closing) = (
        chars[open],
        match chars[open] {
            '(' => ')',
            '[' => ']',
            _ => '}',
        },
    );
    let mut depth = 0;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = after_string(chars, i) - 1,
            c if c == opening => depth += 1,
            c if c == closing => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced {opening} in {}", chars.iter().collect::<String>());
}

/// The index after the string literal opened at `open`.
fn after_string(chars: &[char], open: usize) -> usize {
    let quote = chars[open];
    let mut i = open + 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// The label names of a matcher list `{a="x", b=~"y"}` (the braces included).
fn matcher_labels(group: &[char]) -> Vec<String> {
    let mut labels = Vec::new();
    let mut i = 1;
    while i < group.len() {
        let c = group[i];
        if c == '"' || c == '\'' || c == '`' {
            i = after_string(group, i);
        } else if is_ident_start(c) {
            let start = i;
            while i < group.len() && is_ident(group[i]) {
                i += 1;
            }
            labels.push(group[start..i].iter().collect());
        } else {
            i += 1;
        }
    }
    labels
}

/// Every vector selector of a PromQL expression, read crudely: identifiers that are no function,
/// keyword or label name, with the label names of the matchers that follow them.
fn selectors(expr: &str) -> Vec<Selector> {
    let chars: Vec<char> = expr.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    let next_non_space = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = after_string(&chars, i);
        } else if c == '[' || c == '{' {
            assert!(c == '[', "a selector without a metric name in {expr}");
            i = after_group(&chars, i);
        } else if c == '$' || c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // A Grafana variable, a number or a duration.
            i += 1;
            while i < chars.len() && (is_ident(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else if is_ident_start(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = next_non_space(i);
            let opens = chars.get(next) == Some(&'(');
            if LABEL_LISTS.contains(&word.as_str()) {
                // `group_left` / `group_right` may come without a list.
                assert!(opens || word.starts_with("group_"), "`{word}` without its label list in {expr}");
                if opens {
                    i = after_group(&chars, next);
                }
            } else if opens {
                assert!(FUNCTIONS.contains(&word.as_str()), "`{word}(` is no PromQL function: {expr}");
            } else if AGGREGATIONS.contains(&word.as_str()) || OPERATORS.contains(&word.as_str()) {
            } else {
                let labels = if chars.get(next) == Some(&'{') {
                    let end = after_group(&chars, next);
                    let labels = matcher_labels(&chars[next..end]);
                    i = end;
                    labels
                } else {
                    Vec::new()
                };
                found.push(Selector { metric: word, labels });
            }
        } else {
            i += 1;
        }
    }
    found
}

/// The `expr:` of every rule in a Prometheus rule file (one line, or a `|` / `>` block).
fn rule_expressions(rules: &str) -> Vec<String> {
    let lines: Vec<&str> = rules.lines().collect();
    let mut exprs = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else { continue };
        let indent = line.len() - line.trim_start().len();
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let block: Vec<&str> = lines[n + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .copied()
                .collect();
            exprs.push(block.join("\n"));
        } else {
            exprs.push(rest.trim_matches(|c| c == '"' || c == '\'').to_owned());
        }
    }
    exprs
}

/// Every `expr` of a Grafana dashboard.
fn dashboard_expressions(dashboard: &serde_json::Value, into: &mut Vec<String>) {
    match dashboard {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value {
                    serde_json::Value::String(expr) if key == "expr" => into.push(expr.clone()),
                    other => dashboard_expressions(other, into),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| dashboard_expressions(item, into)),
        _ => {}
    }
}

/// What a scrape exports: each metric family with the label names its series carry.
fn families(exposition: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut types = BTreeMap::new();
    let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in exposition.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let mut words = declared.split_whitespace();
            if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                types.insert(name.to_owned(), kind.to_owned());
                labels.entry(name.to_owned()).or_default();
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let series = &line[..name_end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| series.strip_suffix(suffix))
            .find(|base| types.get(*base).is_some_and(|t| t == "histogram" || t == "summary"))
            .unwrap_or(series);
        let set = labels.entry(family.to_owned()).or_default();
        if line[name_end..].starts_with('{') {
            let end = line.rfind('}').unwrap_or(line.len());
            let chars: Vec<char> = line[name_end..=end.min(line.len() - 1)].chars().collect();
            set.extend(matcher_labels(&chars).into_iter().filter(|l| l != "le" && l != "quantile"));
        }
    }
    labels
}

/// `name` as the family whose series it is (`x_bucket` → `x` for a histogram `x`).
fn family_of<'a>(name: &'a str, exported: &BTreeMap<String, BTreeSet<String>>) -> &'a str {
    if exported.contains_key(name) {
        return name;
    }
    ["_bucket", "_sum", "_count"].iter().filter_map(|suffix| name.strip_suffix(suffix)).next().unwrap_or(name)
}

/// Every metric name given to `metrics::counter!`, `gauge!` or `histogram!` as a literal in the
/// workspace's sources.
fn names_in_sources() -> BTreeSet<String> {
    fn walk(dir: &Path, names: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, names);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for macro_call in ["metrics::counter!(\"", "metrics::gauge!(\"", "metrics::histogram!(\""] {
                    for (at, _) in text.match_indices(macro_call) {
                        let rest = &text[at + macro_call.len()..];
                        names.insert(rest[..rest.find('"').unwrap()].to_owned());
                    }
                }
            }
        }
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let mut names = BTreeSet::new();
    for member in std::fs::read_dir(&workspace).unwrap().flatten() {
        let src = member.path().join("src");
        if src.is_dir() && member.file_name() != "target" {
            walk(&src, &mut names);
        }
    }
    names
}

/// Every selector of the monitoring files, with where it is used.
fn used() -> Vec<(String, Selector)> {
    let mut exprs: Vec<(String, String)> =
        rule_expressions(RULES).into_iter().map(|e| ("rules.yaml".into(), e)).collect();
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let mut queries = Vec::new();
    dashboard_expressions(&dashboard, &mut queries);
    assert!(!queries.is_empty() && exprs.len() > 10, "the monitoring files were read");
    exprs.extend(queries.into_iter().map(|e| ("dashboard.json".into(), e)));
    exprs.into_iter().flat_map(|(file, expr)| selectors(&expr).into_iter().map(move |s| (file.clone(), s))).collect()
}

#[test]
fn the_promql_reader_finds_metrics_and_their_labels() {
    let read = selectors(
        "histogram_quantile(0.99, sum by (le, call) (rate(upstream_seconds_bucket{call=~\"pay|x\"}[$__rate_interval]))) \
         / on (job) group_left max without (instance) (x_total offset 5m) > 0.5 and absent(up{job=\"gateway\"} == 1) \
         or vector(0)",
    );
    let read: Vec<(&str, Vec<&str>)> =
        read.iter().map(|s| (s.metric.as_str(), s.labels.iter().map(String::as_str).collect())).collect();
    assert_eq!(read, [("upstream_seconds_bucket", vec!["call"]), ("x_total", vec![]), ("up", vec!["job"])]);
    let exported = families(
        "# TYPE upstream_seconds histogram\nupstream_seconds_bucket{call=\"pay\",le=\"0.5\"} 1\n\
         upstream_seconds_sum{call=\"pay\"} 0.1\n# TYPE x_total counter\nx_total 3\n",
    );
    assert_eq!(family_of("upstream_seconds_bucket", &exported), "upstream_seconds");
    assert_eq!(exported["upstream_seconds"], BTreeSet::from(["call".to_owned()]));
    assert!(exported["x_total"].is_empty());
}

async fn scrape(http: &reqwest::Client, admin: &str) -> String {
    http.get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_the_dashboard_use_is_exported() {
    // Notifications off: the UNKNOWN payments are settled by the reconciler, not by Alipay's
    // notification. At this scale the reconciler queries after 250 ms and cancels at 3 s.
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(0.05) }).await;
    let dead_hook = Some("http://127.0.0.1:9/hook".to_owned());
    let (shop, _) = stack.tenant_with_webhook(Dialect::Openapi, alipay::SignType::Rsa2, generous(), dead_hook).await;
    let limited = stack
        .tenant(Dialect::Openapi, alipay::SignType::Rsa2, Limits { pay_rate: 1, pay_burst: 1, other_rate: 50 })
        .await;
    let gateway = GatewayProcess::spawn(stack.gateway_process(env!("CARGO_BIN_EXE_gateway"), &stack.gateway_config()));
    ready_within(&gateway.admin, Duration::from_secs(20)).await;
    let (shop, limited) = (Pos { base: gateway.base.clone(), ..shop }, Pos { base: gateway.base.clone(), ..limited });
    let bills = std::env::temp_dir().join(unique("monitoring-bills-"));
    std::fs::create_dir_all(&bills).unwrap();
    // The daily close of yesterday, at once: the bill counters and the open-discrepancy gauge.
    let mut config = stack.reconciler_config();
    config.bills_dir = Some(bills.clone());
    config.bills_fetch_after_minutes = 0;
    config.bills_lookback_days = 1;
    let reconciler = stack.start_reconciler(config).await;
    let reconciler_admin = format!("http://{}", reconciler.admin_addr());

    let (status, paid) = shop.pay(&trade_no("mon-paid"), &code("00"), "10.00").await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("SUCCESS")), "{paid}");
    // UNKNOWN, paid a moment later: the reconciler's query settles it (and its webhook is
    // abandoned: nobody listens on port 9).
    let later = trade_no("mon-later");
    let (status, unknown) = shop.pay(&later, &code("60"), "18.50").await;
    assert_eq!((status, unknown["status"].as_str()), (200, Some("UNKNOWN")), "{unknown}");
    // UNKNOWN and never paid: the reconciler cancels it at its deadline.
    let never = trade_no("mon-never");
    let (status, unknown) = shop.pay(&never, &code("61"), "3.00").await;
    assert_eq!((status, unknown["status"].as_str()), (200, Some("UNKNOWN")), "{unknown}");
    let mut limited_answers = Vec::new();
    for _ in 0..10 {
        let (status, _) = limited.pay(&trade_no("mon-limited"), &code("00"), "1.00").await;
        limited_answers.push(status);
        if status == 429 {
            break;
        }
    }
    assert_eq!(limited_answers.last(), Some(&429), "a burst of 1 at 1/s is limited: {limited_answers:?}");
    let without_token = stack.http.get(format!("{}/admin/tenants", gateway.admin)).send().await.unwrap();
    assert_eq!(without_token.status(), 401);
    let notification = stack.http.post(format!("{}/notify/nobody", gateway.base)).body("a=b").send().await.unwrap();
    assert!(notification.status().is_client_error() || notification.status().is_success());
    let (_, settled) = shop.get(&later, 30).await;
    assert_eq!(settled["status"], "SUCCESS", "settled by the reconciler: {settled}");
    let (_, cancelled) = shop.get(&never, 30).await;
    assert_eq!(cancelled["status"], "CANCELLED", "cancelled by the reconciler: {cancelled}");

    // Series appear as their events happen (webhook retries, the daily close, the sweeper's
    // gauges): scrape until every name is there, or for 60 s.
    let used = used();
    let event_only: BTreeMap<&str, &str> = EVENT_ONLY.iter().copied().collect();
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    let (gateway_metrics, reconciler_metrics, missing) = loop {
        let gateway_metrics = families(&scrape(&stack.http, &gateway.admin).await);
        let reconciler_metrics = families(&scrape(&stack.http, &reconciler_admin).await);
        let missing: BTreeSet<&str> = used
            .iter()
            .map(|(_, s)| s.metric.as_str())
            .filter(|name| !PROMETHEUS_OWN.contains(name) && !event_only.contains_key(name))
            .filter(|name| ![&gateway_metrics, &reconciler_metrics].iter().any(|m| m.contains_key(family_of(name, m))))
            .collect();
        if missing.is_empty() || tokio::time::Instant::now() >= give_up {
            break (gateway_metrics, reconciler_metrics, missing);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    reconciler.stop().await;
    let _ = std::fs::remove_dir_all(&bills);
    assert!(
        missing.is_empty(),
        "named in deploy/monitoring but exported by neither service: {missing:?}\n\
         gateway: {:?}\nreconciler: {:?}",
        gateway_metrics.keys(),
        reconciler_metrics.keys()
    );

    // The event-only names: each used, not (or not yet) scraped, and exported by the code.
    let in_sources = names_in_sources();
    for (name, why) in EVENT_ONLY {
        assert!(used.iter().any(|(_, s)| s.metric == *name), "{name} is listed as event-only but no longer used");
        assert!(in_sources.contains(*name), "{name} ({why}) is in no metrics macro of the workspace");
    }

    // Every label a selector matches on is one its metric's series carry (or a target label).
    let mut wrong_labels = Vec::new();
    for (file, selector) in &used {
        let labels = [&gateway_metrics, &reconciler_metrics]
            .iter()
            .filter_map(|m| m.get(family_of(&selector.metric, m)))
            .fold(BTreeSet::new(), |all, some| &all | some);
        if labels.is_empty() && !PROMETHEUS_OWN.contains(&selector.metric.as_str()) {
            continue; // event-only, or a family whose series carry no label
        }
        for label in &selector.labels {
            if !labels.contains(label) && label != "job" && label != "instance" {
                wrong_labels.push(format!("{file}: {}{{{label}}} (its labels: {labels:?})", selector.metric));
            }
        }
    }
    assert!(wrong_labels.is_empty(), "labels no series carries: {wrong_labels:#?}");
    let names: BTreeSet<&str> = used.iter().map(|(_, s)| s.metric.as_str()).collect();
    println!(
        "{} metric names in deploy/monitoring, all exported ({} by event only: {:?})",
        names.len(),
        EVENT_ONLY.len(),
        event_only.keys()
    );
}
