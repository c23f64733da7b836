//! The starred mints and the small file that keeps them (one address a line).
//!
//! The file is read once at start; a missing file is an empty list, an unreadable one is reported and the
//! list starts empty (stars are a convenience, never a reason not to start), and a line that is not a mint
//! address is skipped. Every change rewrites the whole file atomically: a temporary file next to it is
//! written, synced and renamed over it, so a crash leaves the old list or the new one, never half of one.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use kline_protocol::Symbol;

/// What went wrong with the stars file.
#[derive(Debug, thiserror::Error)]
pub enum StarsError {
    #[error("cannot read the stars file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the stars file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The starred mints, and where they are kept (`None`: nowhere, for a home-less environment).
#[derive(Debug, Clone, Default)]
pub struct Stars {
    path: Option<PathBuf>,
    starred: BTreeSet<Symbol>,
}

impl Stars {
    /// `$XDG_CONFIG_HOME/kline/stars`, else `$HOME/.config/kline/stars`.
    pub fn default_path() -> Option<PathBuf> {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
        Some(config.join("kline").join("stars"))
    }

    /// Reads the stars at `path`. The stars are always usable: on a read error they start empty and the
    /// error is returned beside them.
    pub fn load(path: Option<PathBuf>) -> (Stars, Option<StarsError>) {
        let mut stars = Stars {
            path,
            starred: BTreeSet::new(),
        };
        let Some(path) = stars.path.clone() else {
            return (stars, None);
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return (stars, None),
            Err(source) => return (stars, Some(StarsError::Read { path, source })),
        };
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match Symbol::parse(line) {
                Ok(symbol) => {
                    stars.starred.insert(symbol);
                }
                Err(err) => {
                    tracing::warn!(file = %path.display(), %err, "skipping a line of the stars file")
                }
            }
        }
        (stars, None)
    }

    pub fn contains(&self, symbol: &Symbol) -> bool {
        self.starred.contains(symbol)
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Stars `symbol`, or unstars it when starred, and writes the file. Returns whether it is now starred;
    /// the change holds for this session even when the file cannot be written (the error says so).
    pub fn toggle(&mut self, symbol: &Symbol) -> Result<bool, StarsError> {
        let starred = if self.starred.remove(symbol) {
            false
        } else {
            self.starred.insert(symbol.clone());
            true
        };
        self.save()?;
        Ok(starred)
    }

    fn save(&self) -> Result<(), StarsError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let write_error = |source| StarsError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_error)?;
        }
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let text: String = self
            .starred
            .iter()
            .map(|symbol| format!("{symbol}\n"))
            .collect();
        let written = std::fs::File::create(&temporary).and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        });
        if let Err(err) = written.and_then(|()| std::fs::rename(&temporary, path)) {
            let _ = std::fs::remove_file(&temporary);
            return Err(write_error(err));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mint(n: u8) -> Symbol {
        Symbol::from_bytes(&[n; 32])
    }

    #[test]
    fn a_missing_file_is_an_empty_list_and_a_toggle_creates_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("stars");
        let (mut stars, error) = Stars::load(Some(path.clone()));
        assert!(error.is_none());
        assert!(!stars.contains(&mint(1)));
        assert!(stars.toggle(&mint(1)).unwrap());
        assert!(stars.toggle(&mint(2)).unwrap());
        assert!(!stars.toggle(&mint(1)).unwrap(), "a second toggle unstars");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", mint(2))
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["stars"], "no temporary file left behind");
        let (again, _) = Stars::load(Some(path));
        assert!(again.contains(&mint(2)) && !again.contains(&mint(1)));
    }

    #[test]
    fn bad_lines_are_skipped_and_an_unreadable_file_is_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stars");
        std::fs::write(&path, format!("not a mint\n\n  {}  \n", mint(3))).unwrap();
        let (stars, error) = Stars::load(Some(path));
        assert!(error.is_none());
        assert!(stars.contains(&mint(3)));

        // A directory where the file should be: reading fails, the list starts empty, writing reports it.
        let (mut stars, error) = Stars::load(Some(dir.path().to_owned()));
        assert!(matches!(error, Some(StarsError::Read { .. })), "{error:?}");
        assert!(matches!(
            stars.toggle(&mint(4)),
            Err(StarsError::Write { .. })
        ));
        assert!(stars.contains(&mint(4)), "the star holds for the session");
    }
}
