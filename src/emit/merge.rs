//! Setting sealkey's values in a HelmRelease someone already has, changing only those lines.
//!
//! A user's HelmRelease carries their chart version, executor, resources, comments and order; a
//! merge must not touch any of it. The edit is made on the text, by indentation (block-style YAML,
//! which is how HelmReleases are written): each owned key's lines are replaced, or inserted at the
//! end of their parent mapping, and nothing else moves. The result is then parsed and compared
//! with the original: it must be the same objects with only the owned values set, or the merge is
//! refused and nothing is written.

use crate::error::{Error, Result, Setting};
use crate::message;
use serde_json::Value;

/// One value sealkey owns: its key path from the object root, and what it must hold.
#[derive(Debug, Clone)]
pub struct Owned {
    /// `["spec", "values", "dags", "gitSync", "knownHosts"]`.
    pub path: Vec<String>,
    /// The value.
    pub value: Value,
}

impl Owned {
    /// A path given as dotted segments.
    pub fn new(path: &[&str], value: Value) -> Self {
        Self {
            path: path.iter().map(|s| s.to_string()).collect(),
            value,
        }
    }
}

/// The values `--emit helmrelease` owns in the Apache Airflow chart's HelmRelease.
pub fn git_sync_owned(secret_name: &str, known_hosts: &str) -> Vec<Owned> {
    let base = ["spec", "values", "dags", "gitSync"];
    vec![
        Owned::new(
            &[&base[..], &["sshKeySecret"]].concat(),
            Value::from(secret_name),
        ),
        Owned::new(
            &[&base[..], &["knownHosts"]].concat(),
            Value::from(known_hosts),
        ),
    ]
}

/// Sets `owned` in the one HelmRelease of `text` and returns the new text; every line outside the
/// owned keys stays byte for byte. `what` names the file in errors. A SOPS-encrypted HelmRelease
/// goes through [`crate::seal::sops::merge_into_sealed_helm_release`], which needs its identity.
pub fn merge_into_helm_release(text: &str, what: &str, owned: &[Owned]) -> Result<String> {
    merge_lines(text, what, owned, false)
}

/// The text edit behind both merges. With `sealed`, the HelmRelease may carry a `sops` block
/// (the caller encrypts owned values the file's rule encrypts, and renews the MAC afterwards).
pub(crate) fn merge_lines(text: &str, what: &str, owned: &[Owned], sealed: bool) -> Result<String> {
    let refuse = |why: String| {
        Error::input(
            what,
            format!("cannot merge sealkey's values safely: {why}"),
            message!("nothing was written; set the values by hand (`{} values` prints them), or write the HelmRelease in block style", Setting::Emit),
        )
    };
    let docs = crate::yaml::parse_stream(text, what)?;
    let hr: Vec<usize> = docs
        .iter()
        .enumerate()
        .filter(|(_, d)| d["kind"] == "HelmRelease")
        .map(|(i, _)| i)
        .collect();
    let [index] = hr[..] else {
        return Err(refuse(format!(
            "it holds {} HelmRelease objects, not one",
            hr.len()
        )));
    };
    if docs[index].get("sops").is_some() && !sealed {
        return Err(Error::input(
            what,
            "cannot merge sealkey's values safely: the HelmRelease is SOPS-encrypted and no identity to open it was given",
            message!("keep the key in its own sealed Secret (what {} helmrelease does), or give the identity ({}) to merge into the sealed file", Setting::Emit, Setting::Identity),
        ));
    }
    // Lines sealkey writes take the file's line ending (its first one), so a CRLF file stays CRLF.
    let crlf = text.find('\n').is_some_and(|i| text[..i].ends_with('\r'));
    let eol = |mut line: String| {
        if crlf && line.ends_with('\n') && !line.ends_with("\r\n") {
            line.insert(line.len() - 1, '\r');
        }
        line
    };
    // One owned value at a time, each planned on the text the previous one left.
    let mut merged = text.to_string();
    for o in owned {
        let lines: Vec<&str> = merged.split_inclusive('\n').collect();
        let (start, end) = document_lines(&lines, index)
            .ok_or_else(|| refuse("its documents could not be told apart by `---` lines".into()))?;
        let e = plan(&lines, start, end, o).map_err(refuse)?;
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        if e.at == out.len() && out.last().is_some_and(|l| !l.ends_with('\n')) {
            out.last_mut()
                .expect("non-empty")
                .push_str(if crlf { "\r\n" } else { "\n" });
        }
        out.splice(e.at..e.at + e.remove, e.insert.into_iter().map(eol));
        merged = out.concat();
    }
    // The proof: the same objects, with exactly the owned values set.
    let mut expected = docs;
    for o in owned {
        set_path(&mut expected[index], &o.path, o.value.clone());
    }
    let got = crate::yaml::parse_stream(&merged, what)
        .map_err(|_| refuse("the edited text would not parse".into()))?;
    if got != expected {
        return Err(refuse(
            "the edited text would not read back as the same objects".into(),
        ));
    }
    Ok(merged)
}

/// Replace `remove` lines at `at` with `insert`.
struct Edit {
    at: usize,
    remove: usize,
    insert: Vec<String>,
}

/// Sets the value at `path`, making the mappings on the way.
pub(crate) fn set_path(v: &mut Value, path: &[String], value: Value) {
    let mut cur = v;
    for k in &path[..path.len() - 1] {
        if !cur.get(k).is_some_and(Value::is_object) {
            cur[k.as_str()] = Value::Object(Default::default());
        }
        cur = &mut cur[k.as_str()];
    }
    cur[path[path.len() - 1].as_str()] = value;
}

/// The line range `[start, end)` of the `index`-th non-empty document.
fn document_lines(lines: &[&str], index: usize) -> Option<(usize, usize)> {
    let is_sep = |l: &str| {
        let t = l.trim_end();
        t == "---" || t.starts_with("--- ") || t == "..."
    };
    let mut ranges = Vec::new();
    let mut start = 0;
    for (i, l) in lines.iter().enumerate() {
        if is_sep(l) {
            ranges.push((start, i));
            start = i + 1;
        }
    }
    ranges.push((start, lines.len()));
    ranges
        .into_iter()
        .filter(|&(s, e)| lines[s..e].iter().any(|l| is_content(l)))
        .nth(index)
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The key a block-mapping line starts with (quotes removed), and what follows its `:`.
fn key_of(line: &str) -> Option<(String, &str)> {
    let t = line.trim_start_matches(' ');
    let (key, rest) = if let Some(q) = t.strip_prefix('"') {
        let end = q.find('"')?;
        (q[..end].to_string(), q[end + 1..].strip_prefix(':')?)
    } else if let Some(q) = t.strip_prefix('\'') {
        let end = q.find('\'')?;
        (q[..end].to_string(), q[end + 1..].strip_prefix(':')?)
    } else {
        let colon = t
            .find(": ")
            .or_else(|| t.trim_end().strip_suffix(':').map(|k| k.len()))?;
        (t[..colon].to_string(), &t[colon + 1..])
    };
    Some((key, rest))
}

/// End of the block under a key at `line` (indent `ind`): the line after its last more-indented
/// content line (trailing blank and comment lines stay with what follows).
fn block_end(lines: &[&str], line: usize, end: usize, ind: usize) -> usize {
    let mut last = line;
    for (i, l) in lines.iter().enumerate().take(end).skip(line + 1) {
        if !is_content(l) {
            continue;
        }
        if indent_of(l) <= ind {
            break;
        }
        last = i;
    }
    last + 1
}

/// Finds `key` among the children of the block `[from, to)` whose children sit at the first
/// content line's indentation; returns (line, indentation of the children).
fn child(
    lines: &[&str],
    from: usize,
    to: usize,
    key: &str,
) -> std::result::Result<(Option<usize>, Option<usize>), String> {
    let Some(first) = (from..to).find(|&i| is_content(lines[i])) else {
        return Ok((None, None));
    };
    let ind = indent_of(lines[first]);
    for (i, l) in lines.iter().enumerate().take(to).skip(first) {
        if !is_content(l) || indent_of(l) != ind {
            continue;
        }
        if l.trim_start().starts_with("- ") || l.trim_start().starts_with('{') {
            return Err(format!("line {} is not a block mapping entry", i + 1));
        }
        if let Some((k, _)) = key_of(l) {
            if k == key {
                return Ok((Some(i), Some(ind)));
            }
        }
    }
    Ok((None, Some(ind)))
}

/// Plans the edit for one owned value within the document's lines `[start, end)`.
fn plan(
    lines: &[&str],
    start: usize,
    end: usize,
    owned: &Owned,
) -> std::result::Result<Edit, String> {
    let mut from = start;
    let mut to = end;
    let mut parent_indent: Option<usize> = None;
    for (depth, key) in owned.path.iter().enumerate() {
        let leaf = depth + 1 == owned.path.len();
        let (found, child_indent) = child(lines, from, to, key)?;
        let ind = child_indent.unwrap_or_else(|| parent_indent.map_or(0, |p| p + 2));
        match found {
            Some(line) => {
                let (_, rest) = key_of(lines[line]).expect("found by key");
                let block_to = block_end(lines, line, to, ind);
                if leaf {
                    return Ok(Edit {
                        at: line,
                        remove: block_to - line,
                        insert: render(&owned.path[depth..], &owned.value, ind),
                    });
                }
                let rest = rest.trim();
                if !(rest.is_empty() || rest.starts_with('#')) {
                    return Err(format!(
                        "`{}` at line {} holds an inline value, not a block mapping",
                        owned.path[..=depth].join("."),
                        line + 1
                    ));
                }
                parent_indent = Some(ind);
                from = line + 1;
                to = block_to;
            }
            None => {
                // Insert the rest of the path at the end of the parent block.
                let at = (from..to)
                    .rev()
                    .find(|&i| is_content(lines[i]))
                    .map_or(from, |i| i + 1);
                return Ok(Edit {
                    at,
                    remove: 0,
                    insert: render(&owned.path[depth..], &owned.value, ind),
                });
            }
        }
    }
    Err("empty path".into())
}

/// `path` (nested keys) ending in `value`, rendered by sealkey's emitter and indented by `ind`.
fn render(path: &[String], value: &Value, ind: usize) -> Vec<String> {
    let mut v = value.clone();
    for k in path.iter().rev() {
        let mut m = serde_json::Map::new();
        m.insert(k.clone(), v);
        v = Value::Object(m);
    }
    let text = crate::yaml::to_yaml(&v);
    text.split_inclusive('\n')
        .map(|l| {
            if l.trim().is_empty() {
                l.to_string()
            } else {
                format!("{}{l}", " ".repeat(ind))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "\
# Airflow for the data team
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: airflow
  namespace: airflow
spec:
  interval: 10m
  chart:
    spec:
      chart: airflow
      version: \"1.15.0\" # pinned: 1.16 breaks our plugins
  values:
    executor: CeleryExecutor
    dags:
      gitSync:
        enabled: true
        repo: git@github.com:acme/dags.git
        knownHosts: |
          old.example.com ssh-ed25519 AAAAold
        # keep the sync fast
        period: 5s
    extraSecrets:
      other-secret:
        stringData: |
          KEEP: me
    workers:
      resources: {limits: {memory: 2Gi}}
";

    #[test]
    fn only_the_owned_lines_change() {
        let owned = git_sync_owned("airflow-ssh-secret", "github.com ssh-ed25519 AAAAnew\n");
        let merged = merge_into_helm_release(USER, "hr.yaml", &owned).unwrap();
        let old: Vec<&str> = USER.lines().collect();
        let new: Vec<&str> = merged.lines().collect();
        let removed: Vec<&&str> = old.iter().filter(|l| !new.contains(l)).collect();
        let added: Vec<&&str> = new.iter().filter(|l| !old.contains(l)).collect();
        assert_eq!(removed, [&"          old.example.com ssh-ed25519 AAAAold"]);
        assert_eq!(
            added,
            [
                &"          github.com ssh-ed25519 AAAAnew",
                &"        sshKeySecret: airflow-ssh-secret"
            ]
        );
        assert!(merged.contains("# pinned: 1.16 breaks our plugins"));
        assert!(merged.contains("        # keep the sync fast\n        period: 5s\n"));
    }

    #[test]
    fn a_crlf_file_keeps_crlf_on_every_line_and_an_lf_file_stays_lf() {
        // Was: the inserted lines ended in a bare LF, leaving a CRLF file with mixed endings.
        let owned = git_sync_owned("airflow-ssh-secret", "github.com ssh-ed25519 AAAAnew\n");
        let crlf = USER.replace('\n', "\r\n");
        let merged = merge_into_helm_release(&crlf, "hr.yaml", &owned).unwrap();
        let bare = merged
            .match_indices('\n')
            .filter(|(i, _)| !merged[..*i].ends_with('\r'));
        assert_eq!(bare.count(), 0, "{merged:?}");
        assert!(merged.contains("sshKeySecret: airflow-ssh-secret\r\n"));
        // Without a final line break, the line added at the end takes the file's ending too.
        let short = "kind: HelmRelease\r\nspec:\r\n  values:\r\n    executor: K";
        let merged = merge_into_helm_release(short, "t", &owned).unwrap();
        assert!(
            merged.starts_with("kind: HelmRelease\r\nspec:\r\n  values:\r\n    executor: K\r\n"),
            "{merged:?}"
        );
        assert!(!merged.replace("\r\n", "").contains('\n'), "{merged:?}");
        let lf = merge_into_helm_release(USER, "hr.yaml", &owned).unwrap();
        assert!(!lf.contains('\r'));
    }

    #[test]
    fn missing_parents_are_added_under_the_deepest_existing_one() {
        let text = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: a\nspec:\n  values:\n    executor: KubernetesExecutor\n";
        let merged = merge_into_helm_release(text, "t", &git_sync_owned("s", "h k\n")).unwrap();
        assert!(merged.starts_with(text), "{merged}");
        let doc = &crate::yaml::parse_stream(&merged, "t").unwrap()[0];
        assert_eq!(
            doc["spec"]["values"]["dags"]["gitSync"]["sshKeySecret"],
            "s"
        );
        assert_eq!(doc["spec"]["values"]["executor"], "KubernetesExecutor");
    }

    #[test]
    fn flow_style_encrypted_or_ambiguous_files_are_refused() {
        let flow = "kind: HelmRelease\nspec:\n  values: {dags: {gitSync: {enabled: true}}}\n";
        let two = "kind: HelmRelease\n---\nkind: HelmRelease\n";
        let sops = "kind: HelmRelease\nspec: {}\nsops:\n  mac: x\n";
        for bad in [flow, two, sops] {
            let err =
                merge_into_helm_release(bad, "hr.yaml", &git_sync_owned("s", "h k\n")).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains("cannot merge"), "{err}");
        }
    }
}
