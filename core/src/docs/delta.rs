//! Which paths a change touched, for change events: Automerge's diff between the heads
//! before and after the change, reduced to the shallowest distinct paths and bounded.
//!
//! A put, delete or increment under a map reports the path of that key (`"todo/0/done"`);
//! anything done to the elements of a list or to the characters of a text (insert, delete,
//! put at an index, splice, mark) reports the path of the list or text itself, not one path
//! per element or character. A path inside one already reported is not listed (putting a
//! map at `"m"` reports `"m"`, not also `"m/x"`). At most [`MAX_PATHS`] are listed; past
//! that [`Touched::truncated`] is set. Everything here may take time in proportion to the
//! document (the diff walks its operations): callers run it on the blocking pool, under
//! the document's lock, and only when someone subscribes to changes.

use std::collections::HashSet;

use automerge::{AutoCommit, ChangeHash, Patch, PatchAction, Prop};

use super::edit;
use super::path::{Path, Seg};

/// The most paths one change event lists.
pub const MAX_PATHS: usize = 256;

/// The paths a change touched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Touched {
    /// The shallowest paths that changed, in the string form [`Path`] parses (sorted).
    pub paths: Vec<String>,
    /// Whether more paths changed than are listed (the limit was reached).
    pub truncated: bool,
}

/// What a change did, taken where it was made (under the document's lock, on the blocking
/// pool): the document's heads after it and, if someone wanted them, the paths it touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// The heads after the change (hex, sorted).
    pub heads: Vec<String>,
    /// The paths it touched (`None`: not computed, no one subscribed when it started).
    pub touched: Option<Touched>,
}

/// Where a change starts from: the heads before it, kept only when someone wants to know
/// what it did (`want`: someone subscribes to changes).
#[derive(Debug, Clone, Default)]
pub(crate) struct Before(Option<Vec<ChangeHash>>);

impl Before {
    /// The heads of `doc` now if `want`, else nothing.
    pub fn of(doc: &mut AutoCommit, want: bool) -> Before {
        Before(want.then(|| doc.get_heads()))
    }

    /// An empty document's (a document created from an import or a peer's message).
    pub fn empty(want: bool) -> Before {
        Before(want.then(Vec::new))
    }

    /// What the change from here to the current state of `doc` did.
    pub fn delta(&self, doc: &mut AutoCommit) -> Delta {
        Delta {
            touched: self.0.as_ref().map(|b| touched(doc, b, MAX_PATHS)),
            heads: edit::heads(doc),
        }
    }
}

/// The paths touched between the heads `before` and the current heads of `doc`, at most
/// `limit` of them.
pub fn touched(doc: &mut AutoCommit, before: &[ChangeHash], limit: usize) -> Touched {
    let after = doc.get_heads();
    if same_heads(before, &after) {
        return Touched::default();
    }
    // The document's own diff, not `AutoCommit::diff`, which keeps a copy of the patches.
    let patches = doc.document().diff(before, &after);
    reduce(&patches, limit)
}

fn same_heads(a: &[ChangeHash], b: &[ChangeHash]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// The path a patch touched (see the module docs).
fn patch_path(p: &Patch) -> Vec<Seg> {
    let mut segs: Vec<Seg> = p
        .path
        .iter()
        .map(|(_, prop)| match prop {
            Prop::Map(k) => Seg::Key(k.clone()),
            Prop::Seq(i) => Seg::Index(*i),
        })
        .collect();
    match &p.action {
        PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => {
            segs.push(Seg::Key(key.clone()))
        }
        PatchAction::Increment {
            prop: Prop::Map(key),
            ..
        }
        | PatchAction::Conflict {
            prop: Prop::Map(key),
        } => segs.push(Seg::Key(key.clone())),
        // An element of a list or a character of a text: the list or text itself.
        _ => {}
    }
    segs
}

/// The shallowest distinct paths of `patches`, at most `limit`.
pub fn reduce(patches: &[Patch], limit: usize) -> Touched {
    let mut set: HashSet<Vec<Seg>> = HashSet::new();
    let mut truncated = false;
    for p in patches {
        let segs = patch_path(p);
        // Already listed, itself or inside a listed path.
        if (0..=segs.len()).any(|n| set.contains(&segs[..n])) {
            continue;
        }
        // Paths inside this one give way to it.
        let before = set.len();
        set.retain(|s| !s.starts_with(&segs));
        if set.len() == before && set.len() >= limit {
            truncated = true;
            continue;
        }
        set.insert(segs);
    }
    let mut paths: Vec<String> = set.into_iter().map(|s| Path(s).to_string()).collect();
    paths.sort();
    Touched { paths, truncated }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::value::Value;

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    /// The paths `edit` touches on `doc`.
    fn paths_of(doc: &mut AutoCommit, edit: impl FnOnce(&mut AutoCommit)) -> Vec<String> {
        let before = doc.get_heads();
        edit(doc);
        let t = touched(doc, &before, MAX_PATHS);
        assert!(!t.truncated);
        t.paths
    }

    fn base() -> AutoCommit {
        let mut d = AutoCommit::new();
        let v = Value::Map(
            [
                ("title".to_string(), Value::Str("x".into())),
                (
                    "todo".to_string(),
                    Value::List(vec![Value::Map(
                        [("done".to_string(), Value::Bool(false))].into(),
                    )]),
                ),
                ("n".to_string(), Value::Counter(0)),
                ("t".to_string(), Value::Text("hello".into())),
                ("2026".to_string(), Value::Int(1)),
            ]
            .into(),
        );
        edit::put(&mut d, "d", &Path::root(), &v).unwrap();
        d
    }

    #[test]
    fn each_kind_of_edit_reports_its_path() {
        let mut d = base();
        let put = Value::Str("y".into());
        assert_eq!(
            paths_of(&mut d, |d| edit::put(d, "d", &p("title"), &put).unwrap()),
            ["title"]
        );
        assert_eq!(
            paths_of(&mut d, |d| edit::put(
                d,
                "d",
                &p("todo/0/done"),
                &Value::Bool(true)
            )
            .unwrap()),
            ["todo/0/done"]
        );
        // A map key of digits is reported in the form `get` takes.
        let got = paths_of(&mut d, |d| {
            edit::put(d, "d", &p("2026"), &Value::Int(2)).unwrap()
        });
        assert_eq!(got, ["2026"]);
        assert_eq!(
            edit::get(&d, "d", &p(&got[0])).unwrap(),
            Some(Value::Int(2))
        );
        // Inserting into a list reports the list, even with a map inside the element.
        let item = Value::Map([("done".to_string(), Value::Bool(false))].into());
        assert_eq!(
            paths_of(&mut d, |d| edit::insert(d, "d", &p("todo"), 1, &item)
                .unwrap()),
            ["todo"]
        );
        // A splice reports the text, not its characters.
        assert_eq!(
            paths_of(&mut d, |d| edit::splice_text(
                d,
                "d",
                &p("t"),
                5,
                0,
                ", world"
            )
            .unwrap()),
            ["t"]
        );
        assert_eq!(
            paths_of(&mut d, |d| edit::increment(d, "d", &p("n"), 3).unwrap()),
            ["n"]
        );
        assert_eq!(
            paths_of(&mut d, |d| edit::delete(d, "d", &p("title")).unwrap()),
            ["title"]
        );
        assert_eq!(
            paths_of(&mut d, |d| edit::delete(d, "d", &p("todo/0")).unwrap()),
            ["todo"]
        );
        // A new map reports its own path, not the paths inside it.
        let m = Value::Map(
            [
                ("a".to_string(), Value::Int(1)),
                ("b".to_string(), Value::List(vec![Value::Int(2)])),
            ]
            .into(),
        );
        assert_eq!(
            paths_of(&mut d, |d| edit::put(d, "d", &p("m"), &m).unwrap()),
            ["m"]
        );
        // No change, no paths.
        assert_eq!(paths_of(&mut d, |_| {}), Vec::<String>::new());
    }

    #[test]
    fn a_merge_reports_the_paths_of_every_change_it_brought_once_each() {
        let mut a = base();
        let mut b = a.fork();
        for i in 0..50 {
            edit::splice_text(&mut b, "d", &p("t"), 0, 0, "x").unwrap();
            edit::put(&mut b, "d", &p("title"), &Value::Int(i)).unwrap();
        }
        edit::put(&mut b, "d", &p("todo/0/done"), &Value::Bool(true)).unwrap();
        let before = a.get_heads();
        a.merge(&mut b).unwrap();
        let t = touched(&mut a, &before, MAX_PATHS);
        assert_eq!(t.paths, ["t", "title", "todo/0/done"]);
        assert!(!t.truncated);
        // From nothing: the top-level keys.
        let t = touched(&mut a, &[], MAX_PATHS);
        assert_eq!(t.paths, ["2026", "n", "t", "title", "todo"]);
    }

    #[test]
    fn many_paths_are_bounded_and_flagged() {
        let mut d = AutoCommit::new();
        let before = d.get_heads();
        for i in 0..20 {
            edit::put(&mut d, "d", &p(&format!("k{i:02}")), &Value::Int(i)).unwrap();
        }
        let t = touched(&mut d, &before, 5);
        assert_eq!(t.paths.len(), 5);
        assert!(t.truncated);
        let t = touched(&mut d, &before, 20);
        assert_eq!(t.paths.len(), 20);
        assert!(!t.truncated);
    }

    #[test]
    fn a_parent_replaces_the_paths_inside_it_even_at_the_limit() {
        use automerge::ObjId;
        let patch = |path: Vec<Prop>, key: &str| Patch {
            obj: ObjId::Root,
            path: path.into_iter().map(|p| (ObjId::Root, p)).collect(),
            action: PatchAction::DeleteMap { key: key.into() },
        };
        let m = || Prop::Map("m".into());
        let patches = [
            patch(vec![m()], "a"),
            patch(vec![m()], "b"),
            patch(vec![], "m"),
            patch(vec![m()], "c"),
            patch(vec![], "z"),
        ];
        let t = reduce(&patches, 2);
        assert_eq!(t.paths, ["m", "z"]);
        assert!(!t.truncated);
        let t = reduce(&patches, 1);
        assert_eq!(t.paths, ["m"]);
        assert!(t.truncated);
    }

    #[test]
    fn nobody_listening_computes_nothing() {
        let mut d = base();
        let before = Before::of(&mut d, false);
        edit::put(&mut d, "d", &p("title"), &Value::Null).unwrap();
        let delta = before.delta(&mut d);
        assert_eq!(delta.touched, None);
        assert_eq!(delta.heads, edit::heads(&mut d));
        let before = Before::of(&mut d, true);
        edit::put(&mut d, "d", &p("title"), &Value::Int(1)).unwrap();
        let delta = before.delta(&mut d);
        assert_eq!(delta.touched.unwrap().paths, ["title"]);
        assert_eq!(delta.heads, edit::heads(&mut d));
    }
}
