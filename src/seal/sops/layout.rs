//! SOPS files on disk: one sealed object per file. The sops CLI keeps one data key and one MAC
//! per *file* (a YAML stream is decrypted with its first document's metadata), while Flux's
//! kustomize-controller decrypts object by object; a file of several objects therefore opens in
//! Flux but not with `sops -d` or `sops edit`. Output of more than one object goes to a
//! directory: one file per object (`KIND-NAME.sops.yaml` sealed, `KIND-NAME.yaml` plain) and a
//! `kustomization.yaml` listing them, which Flux applies as it applied the stream.

use crate::error::{Error, Result, Setting};
use crate::message;
use serde_json::Value;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The file that lists the objects of a directory for kustomize (and Flux).
pub const KUSTOMIZATION: &str = "kustomization.yaml";

/// Where `--out PATH` puts SOPS output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One file: a single object.
    File(PathBuf),
    /// A directory: one file per object and a `kustomization.yaml`.
    Directory(PathBuf),
}

/// How `path` is read as the destination of `objects` objects: a directory when it is one or
/// ends in `/`, or, for several objects, when its name has no extension (`clusters/dev/airflow`);
/// otherwise a file.
pub fn target(path: &Path, objects: usize) -> Target {
    let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    let slash = path.as_os_str().to_string_lossy().ends_with('/');
    let bare = path.extension().is_none();
    if is_dir || slash || (objects > 1 && bare) {
        Target::Directory(path.to_path_buf())
    } else {
        Target::File(path.to_path_buf())
    }
}

/// One file of a directory layout.
pub struct LayoutFile {
    /// File name inside the directory.
    pub name: String,
    /// Its text (sealed, or a plain object with nothing to encrypt).
    pub text: Zeroizing<String>,
    /// A strategic-merge patch for a workload (`--emit mount`), not an object of its own: kept
    /// out of `resources` (applied, a partial Deployment would replace the whole one).
    pub patch: bool,
}

impl std::fmt::Debug for LayoutFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LayoutFile({})", self.name)
    }
}

/// Splits a sealed stream (as sealkey renders it: documents separated by `---` lines, which its
/// emitter never writes inside a value) into one file per object.
pub fn split(stream: &str, what: &str) -> Result<Vec<LayoutFile>> {
    let texts = documents(stream);
    let mut files: Vec<LayoutFile> = Vec::with_capacity(texts.len());
    for text in texts {
        let docs = crate::yaml::parse_stream(&text, what)?;
        let Some(doc) = docs.first() else { continue };
        let sealed = doc.get("sops").is_some();
        let patch = is_workload_patch(doc);
        let base = file_stem(doc, files.len());
        let base = if patch { format!("patch-{base}") } else { base };
        let ext = if sealed { "sops.yaml" } else { "yaml" };
        let mut name = format!("{base}.{ext}");
        let mut n = 2;
        while files.iter().any(|f| f.name == name) {
            name = format!("{base}-{n}.{ext}");
            n += 1;
        }
        files.push(LayoutFile { name, text, patch });
    }
    Ok(files)
}

/// A Deployment or StatefulSet without a selector: the mount patch sealkey emits.
fn is_workload_patch(doc: &Value) -> bool {
    matches!(doc["kind"].as_str(), Some("Deployment" | "StatefulSet"))
        && doc["spec"]["selector"].is_null()
}

/// The documents of a stream sealkey rendered, each ending in a newline.
fn documents(stream: &str) -> Vec<Zeroizing<String>> {
    let mut out = Vec::new();
    let mut cur = Zeroizing::new(String::new());
    for line in stream.split_inclusive('\n') {
        if line.trim_end() == "---" {
            if !cur.trim().is_empty() {
                out.push(std::mem::replace(&mut cur, Zeroizing::new(String::new())));
            }
            cur.clear();
            continue;
        }
        cur.push_str(line);
    }
    if !cur.trim().is_empty() {
        if !cur.ends_with('\n') {
            cur.push('\n');
        }
        out.push(cur);
    }
    out
}

/// `secret-airflow-ssh-secret`: kind and name, lowercase, only `[a-z0-9.-]`.
fn file_stem(doc: &Value, index: usize) -> String {
    // Under a rule that encrypts them (`unencrypted_suffix`), kind and name are ciphertext.
    let kind = clear_str(&doc["kind"]).unwrap_or("object");
    let name = clear_str(&doc["metadata"]["name"]).unwrap_or_default();
    let raw = if name.is_empty() {
        format!("{kind}-{}", index + 1)
    } else {
        format!("{kind}-{name}")
    };
    let clean: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches(|c| c == '-' || c == '.').to_string();
    if clean.is_empty() {
        format!("object-{}", index + 1)
    } else {
        clean
    }
}

fn clear_str(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.starts_with("ENC["))
}

/// How many documents a rendered stream holds.
pub fn count(stream: &str) -> usize {
    documents(stream).len()
}

/// What [`write()`] wrote.
#[derive(Debug)]
pub struct Written {
    /// Paths written (sealed and plain objects, and the kustomization when it changed).
    pub files: Vec<PathBuf>,
    /// A directory layout was used.
    pub directory: bool,
}

/// Writes SOPS output to `path` (see [`target`]): a file for one object; a directory with one
/// file per object and a `kustomization.yaml` otherwise. A stream of several objects for a file
/// path is refused (exit 2) before anything is written. `setting` names the flag of `path`.
pub fn write(path: &Path, stream: &str, setting: Setting) -> Result<Written> {
    let n = count(stream);
    match target(path, n) {
        Target::File(file) => {
            if n > 1 {
                return Err(several_objects_for_a_file(&file, n, setting));
            }
            crate::output::write_atomic(&file, stream.as_bytes())?;
            Ok(Written {
                files: vec![file],
                directory: false,
            })
        }
        Target::Directory(dir) => write_directory(&dir, stream, setting),
    }
}

/// The error for several objects bound for one file path.
pub fn several_objects_for_a_file(file: &Path, n: usize, setting: Setting) -> Error {
    let dir = file
        .to_string_lossy()
        .trim_end_matches(".yaml")
        .trim_end_matches(".yml")
        .trim_end_matches(".sops")
        .to_string();
    Error::input(
        message!("{} {}", setting, file.display().to_string()),
        format!("the SOPS output holds {n} objects, and sops opens only one sealed object per file (one data key and MAC per file)"),
        message!(
            "give a directory instead ({} {}/): one file per object and a kustomization.yaml listing them, as Flux applies them (nothing was written)",
            setting,
            dir
        ),
    )
}

fn write_directory(dir: &Path, stream: &str, setting: Setting) -> Result<Written> {
    let what = dir.display().to_string();
    let files = split(stream, &what)?;
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => crate::output::check_target(dir, setting)?,
        Err(_) => {
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if !parent.is_dir() {
                return Err(Error::input(
                    message!("{} {}", setting, what),
                    "its parent directory does not exist",
                    "create the parent directory first (nothing was written)",
                ));
            }
            std::fs::create_dir(dir).map_err(|e| Error::file("create directory", dir, e))?;
        }
    }
    // Every target checked before the first write: nothing half-written.
    for f in &files {
        crate::output::check_target(&dir.join(&f.name), setting)?;
    }
    let kustomization = dir.join(KUSTOMIZATION);
    crate::output::check_target(&kustomization, setting)?;
    let names: Vec<&str> = files
        .iter()
        .filter(|f| !f.patch)
        .map(|f| f.name.as_str())
        .collect();
    let patches: Vec<&str> = files
        .iter()
        .filter(|f| f.patch)
        .map(|f| f.name.as_str())
        .collect();
    let listing = kustomization_text(&kustomization, &names, &patches, &what)?;
    let mut written = Vec::new();
    for f in &files {
        let p = dir.join(&f.name);
        // An unchanged object is not rewritten: its file keeps its bytes and its mtime.
        if std::fs::read(&p).ok().as_deref() == Some(f.text.as_bytes()) {
            continue;
        }
        crate::output::write_atomic(&p, f.text.as_bytes())?;
        written.push(p);
    }
    if let Some(text) = listing {
        crate::output::write_atomic_public(&kustomization, text.as_bytes())?;
        written.push(kustomization);
    }
    Ok(Written {
        files: written,
        directory: true,
    })
}

/// The kustomization to write, or `None` when the existing one already lists every file. An
/// existing one keeps its other entries (`resources` gains the missing files).
fn kustomization_text(
    path: &Path,
    names: &[&str],
    patches: &[&str],
    what: &str,
) -> Result<Option<String>> {
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::file("read", path, e)),
    };
    let Some(existing) = existing else {
        let mut text = String::new();
        for p in patches {
            text.push_str(&format!(
                "# {p}: a strategic-merge patch for your workload, not listed here: add it under\n# `patches:` in the kustomization that holds that workload.\n"
            ));
        }
        text.push_str(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
        );
        for n in names {
            text.push_str(&format!("  - {n}\n"));
        }
        return Ok(Some(text));
    };
    let docs = crate::yaml::parse_stream(&existing, &format!("{what}/{KUSTOMIZATION}"))?;
    let mut doc = docs.into_iter().next().unwrap_or(Value::Null);
    if !doc.is_object() {
        return Err(Error::input(
            format!("{what}/{KUSTOMIZATION}"),
            "not a kustomization (a YAML mapping)",
            "fix or remove it; sealkey lists its files under `resources`",
        ));
    }
    let listed: Vec<String> = doc["resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !listed.iter().any(|l| l == n || l == &format!("./{n}")))
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let mut resources: Vec<Value> = doc["resources"].as_array().cloned().unwrap_or_default();
    resources.extend(missing.iter().map(|n| Value::String((*n).to_string())));
    doc["resources"] = Value::Array(resources);
    Ok(Some(crate::yaml::to_yaml(&doc).to_string()))
}

/// Reads a previous SOPS output for re-sealing: a file (one object, or a stream an older sealkey
/// wrote), or a directory written by [`write()`] (its kustomization's files, in order, as one
/// stream). At most `max` bytes in all.
pub fn read_previous(path: &Path, setting: Setting, max: u64) -> Result<Zeroizing<Vec<u8>>> {
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return read_directory(path, max);
    }
    let what = message!("{} {}", setting, path.display().to_string());
    crate::input_file::read_named_for(path, what, max, "read")
}

/// A layout directory's object files (see [`directory_files`]) as one stream, at most `max`
/// bytes in all.
pub fn read_directory(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>> {
    let list = directory_files(path)?;
    if list.is_empty() {
        return Err(Error::input(
            path.display().to_string(),
            "a directory without object files (no kustomization.yaml resources, no *.yaml)",
            "give a file, or the directory sealkey wrote SOPS output to",
        ));
    }
    let mut out = Zeroizing::new(Vec::new());
    for name in list {
        let p = path.join(&name);
        let text = crate::input_file::read_named_for(&p, p.display().to_string(), max, "read")?;
        if !out.is_empty() {
            out.extend_from_slice(b"---\n");
        }
        out.extend_from_slice(&text);
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        if out.len() as u64 > max {
            return Err(Error::input(
                path.display().to_string(),
                format!("its files hold more than {max} bytes"),
                "split the directory",
            ));
        }
    }
    Ok(out)
}

/// The object files of a layout directory: its kustomization's `resources` that are files in it
/// (YAML), or, without a kustomization, every `*.yaml` file in name order.
pub fn directory_files(dir: &Path) -> Result<Vec<String>> {
    let what = dir.display().to_string();
    let k = dir.join(KUSTOMIZATION);
    if let Ok(text) = std::fs::read_to_string(&k) {
        let docs = crate::yaml::parse_stream(&text, &format!("{what}/{KUSTOMIZATION}"))?;
        let listed: Vec<String> = docs
            .first()
            .and_then(|d| d["resources"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(|s| s.trim_start_matches("./").to_string())
                    .filter(|s| {
                        !s.contains('/')
                            && (s.ends_with(".yaml") || s.ends_with(".yml"))
                            && dir.join(s).is_file()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut all = listed;
        // The workload patches sealkey wrote beside them (not resources).
        let mut patches: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| Error::file("read directory", dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.starts_with("patch-") && n.ends_with(".yaml") && !all.contains(n))
            .collect();
        patches.sort();
        all.extend(patches);
        return Ok(all);
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::file("read directory", dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| {
            (n.ends_with(".yaml") || n.ends_with(".yml"))
                && !n.starts_with('.')
                && n != KUSTOMIZATION
        })
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: airflow\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: airflow-ssh-secret\ndata:\n  k: ENC[x]\nsops:\n  version: 3.13.3\n";

    #[test]
    fn targets_by_name() {
        assert_eq!(
            target(Path::new("a/b.sops.yaml"), 2),
            Target::File("a/b.sops.yaml".into())
        );
        assert_eq!(
            target(Path::new("a/b/"), 1),
            Target::Directory("a/b/".into())
        );
        assert_eq!(
            target(Path::new("a/airflow"), 2),
            Target::Directory("a/airflow".into())
        );
        assert_eq!(
            target(Path::new("a/o.sops"), 2),
            Target::File("a/o.sops".into())
        );
        assert_eq!(target(Path::new("a/o"), 1), Target::File("a/o".into()));
    }

    #[test]
    fn splits_one_file_per_object_sealed_ones_named_sops() {
        let files = split(STREAM, "t").unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "helmrelease-airflow.yaml",
                "secret-airflow-ssh-secret.sops.yaml"
            ]
        );
        assert!(files[1].text.starts_with("apiVersion: v1\n"));
        assert!(files[1].text.ends_with("version: 3.13.3\n"));
    }

    #[test]
    fn an_encrypted_kind_or_name_never_names_a_file() {
        let stream = "kind: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\nmetadata:\n  name: ENC[AES256_GCM,data:a/b,iv:y,tag:z,type:str]\nsops:\n  version: x\n";
        assert_eq!(split(stream, "t").unwrap()[0].name, "object-1.sops.yaml");
    }

    #[test]
    fn several_objects_for_a_file_path_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.sops.yaml");
        let e = write(&p, STREAM, Setting::Out).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(!p.exists());
    }

    #[test]
    fn directory_round_trips_and_keeps_unchanged_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("airflow");
        write(&d, STREAM, Setting::Out).unwrap();
        let k = std::fs::read_to_string(d.join(KUSTOMIZATION)).unwrap();
        assert!(
            k.contains("  - secret-airflow-ssh-secret.sops.yaml\n"),
            "{k}"
        );
        assert!(!k.contains("patch-"), "{k}");
        let back = read_previous(&d, Setting::Update, 1 << 20).unwrap();
        assert_eq!(std::str::from_utf8(&back).unwrap(), STREAM);
        let again = write(&d, STREAM, Setting::Out).unwrap();
        assert!(again.files.is_empty(), "{:?}", again.files);
    }
}

#[cfg(test)]
mod patch_tests {
    use super::*;

    #[test]
    fn a_mount_patch_is_written_beside_the_secret_but_not_listed_as_a_resource() {
        let stream = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: git-creds\nsops:\n  version: x\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: git-sync\nspec:\n  template: {}\n";
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("git-sync");
        write(&d, stream, Setting::Out).unwrap();
        assert!(d.join("patch-deployment-git-sync.yaml").is_file());
        let k = std::fs::read_to_string(d.join(KUSTOMIZATION)).unwrap();
        assert!(
            k.contains("resources:\n  - secret-git-creds.sops.yaml\n"),
            "{k}"
        );
        assert!(k.starts_with("# patch-deployment-git-sync.yaml: "), "{k}");
        let back = read_previous(&d, Setting::Update, 1 << 20).unwrap();
        assert_eq!(std::str::from_utf8(&back).unwrap(), stream);
    }
}
