//! How a lab reports: `Checks` prints a `[PASS]`/`[FAIL]` line per goal as it goes (load, soak);
//! `Report` a table of figures, then `goal ... MET|MISSED` lines and notes (scale, idle). Both end
//! with `<lab>: N passed, M failed`.

pub struct Checks {
    name: &'static str,
    passed: usize,
    failed: usize,
}

impl Checks {
    pub fn new(name: &'static str) -> Checks {
        Checks {
            name,
            passed: 0,
            failed: 0,
        }
    }

    pub fn check(&mut self, ok: bool, what: &str) {
        println!("  [{}] {what}", if ok { "PASS" } else { "FAIL" });
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
    }

    pub fn finish(self) -> bool {
        println!(
            "{}: {} passed, {} failed",
            self.name, self.passed, self.failed
        );
        self.failed == 0
    }
}

/// A figure as the table shows it: a float with 4 significant digits (whole above 1e5).
pub trait Figure {
    fn show(&self) -> String;
}

impl Figure for f64 {
    fn show(&self) -> String {
        if !self.is_finite() || *self == 0.0 || self.abs() >= 1e5 {
            return format!("{self:.0}");
        }
        let decimals = (3 - self.abs().log10().floor() as i32).max(0) as usize;
        let s = format!("{self:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    }
}

impl Figure for usize {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Figure for String {
    fn show(&self) -> String {
        self.clone()
    }
}

pub struct Report {
    name: &'static str,
    rows: Vec<(String, String, &'static str)>,
    goals: Vec<(&'static str, bool, String)>,
    notes: Vec<String>,
}

impl Report {
    pub fn new(name: &'static str, rev: &str) -> Report {
        let rows = vec![("binary".into(), rev.to_owned(), "")];
        Report {
            name,
            rows,
            goals: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, what: &str, value: impl Figure, unit: &'static str) {
        self.rows.push((what.to_owned(), value.show(), unit));
    }

    pub fn goal(&mut self, what: &'static str, ok: bool, detail: String) {
        self.goals.push((what, ok, detail));
    }

    pub fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    /// The cores the rest of the machine used, with a note when that disturbed the figures.
    pub fn other(&mut self, cores: f64) {
        self.row("other load on the machine", cores, "cores");
        if cores > 0.3 {
            self.note(format!(
                "the machine was busy ({cores:.2} cores used by others): re-run for clean figures"
            ));
        }
    }

    /// Prints it all, and writes it as JSON to the `--out=FILE` of `args`, if any; true when every
    /// goal was met.
    pub fn print(self, args: &[String]) -> bool {
        let w = self
            .rows
            .iter()
            .map(|r| r.0.len())
            .max()
            .unwrap_or(0)
            .max(10);
        println!(
            "\n{:<w$}  value\n{}  {}",
            "figure",
            "-".repeat(w),
            "-".repeat(24)
        );
        for (what, value, unit) in &self.rows {
            println!("{}", format!("{what:<w$}  {value} {unit}").trim_end());
        }
        let g = self.goals.iter().map(|x| x.0.len()).max().unwrap_or(0);
        if !self.goals.is_empty() {
            println!();
        }
        for (what, ok, detail) in &self.goals {
            println!(
                "goal {what:<g$}  {}  {detail}",
                if *ok { "MET   " } else { "MISSED" }
            );
        }
        for n in &self.notes {
            println!("note: {n}");
        }
        let passed = self.goals.iter().filter(|x| x.1).count();
        println!(
            "{}: {passed} passed, {} failed",
            self.name,
            self.goals.len() - passed
        );
        if let Some(out) = args.iter().find_map(|a| a.strip_prefix("--out=")) {
            let json =
                serde_json::json!({"rows": self.rows, "goals": self.goals, "notes": self.notes});
            std::fs::write(out, json.to_string())
                .unwrap_or_else(|e| panic!("cannot write {out}: {e}"));
        }
        passed == self.goals.len()
    }
}
