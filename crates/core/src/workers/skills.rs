//! `requiredSkills` preflight: before a worker's task (or a workflow's first step) runs, every
//! skill its profile or step names must be one the worker's OpenCode can load, and its agent
//! must be allowed to load it. A task that would fail later (or quietly work without the skill)
//! fails here instead, without spending a token, naming the skill, the reason and the fix.
//!
//! The worker's own server is asked (`GET /skill`, `GET /agent`), so the answer is OpenCode's:
//! its discovery paths, its frontmatter parser, its permission merge. OpenCode 1.18 leaves a
//! `SKILL.md` whose frontmatter does not parse out of `GET /skill` without saying why, so only
//! to tell "invalid frontmatter" from "missing" are the places OpenCode 1.18.33 reads looked at
//! here: `{skill,skills}/<name>/SKILL.md` under `.opencode/` in the project (and its parents up
//! to the git root) and under the user's OpenCode config folder, and `skills/<name>/SKILL.md`
//! under `.claude/` and `.agents/` (project and home).

use std::path::{Path, PathBuf};

use orchestra_protocol::ErrorKind;

use crate::opencode::{AgentInfo, OpenCodeError, PermissionAction, PermissionRule, SkillInfo};

use super::Lease;

/// Why a required skill cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkillProblem {
    /// No skill of that name anywhere OpenCode looks.
    Missing,
    /// A `SKILL.md` is there but OpenCode does not load it.
    InvalidFrontmatter { path: PathBuf, why: String },
    /// The worker's agent may not load it (`permission.skill`).
    Denied { pattern: String },
}

impl SkillProblem {
    /// The short reason, as it appears in the error (`missing`, `invalid_frontmatter`, `denied`).
    pub fn code(&self) -> &'static str {
        match self {
            SkillProblem::Missing => "missing",
            SkillProblem::InvalidFrontmatter { .. } => "invalid_frontmatter",
            SkillProblem::Denied { .. } => "denied",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    #[error("requiredSkills: skill `{skill}` for worker `{profile}` is {}", describe(.problem, .skill))]
    Unusable {
        profile: String,
        skill: String,
        problem: SkillProblem,
    },
    #[error("requiredSkills: could not ask worker `{profile}`'s OpenCode for its skills: {source}")]
    Upstream {
        profile: String,
        #[source]
        source: OpenCodeError,
    },
}

impl SkillError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SkillError::Unusable { .. } => ErrorKind::BadRequest,
            SkillError::Upstream { .. } => ErrorKind::Upstream,
        }
    }
}

fn describe(problem: &SkillProblem, skill: &str) -> String {
    match problem {
        SkillProblem::Missing => format!(
            "missing (missing): OpenCode finds no skill of that name; create \
             `.opencode/skill/{skill}/SKILL.md` (frontmatter `name: {skill}` and `description`) \
             in the project or in your OpenCode config folder, or remove it from requiredSkills"
        ),
        SkillProblem::InvalidFrontmatter { path, why } => format!(
            "not loaded by OpenCode (invalid_frontmatter): {} {why}; start the file with a `---` \
             block holding `name: {skill}` and a `description`, closed by `---`",
            path.display()
        ),
        SkillProblem::Denied { pattern } => format!(
            "denied (denied) by the permission rule `skill: {{\"{pattern}\": \"deny\"}}`; allow it \
             in `permission.skill` of opencode.json or of the profile, or remove it from \
             requiredSkills"
        ),
    }
}

/// A profile's skills and a step's, each once, in order.
pub fn union(profile: &[String], step: &[String]) -> Vec<String> {
    let mut all: Vec<String> = Vec::with_capacity(profile.len() + step.len());
    for skill in profile.iter().chain(step) {
        if !all.contains(skill) {
            all.push(skill.clone());
        }
    }
    all
}

/// Checks every skill in `required` against the lease's server; the first problem wins.
pub async fn preflight(lease: &Lease, required: &[String]) -> Result<(), SkillError> {
    if required.is_empty() {
        return Ok(());
    }
    let upstream = |source| SkillError::Upstream {
        profile: lease.profile.id.clone(),
        source,
    };
    let client = &lease.conn.client;
    let skills = client.skills().await.map_err(upstream)?;
    let agents = client.agents().await.map_err(upstream)?;
    // An attached server prompts its default agent, `build`.
    let agent_name = lease.agent.as_deref().unwrap_or("build");
    let agent = agents.iter().find(|a| a.name == agent_name);
    let session_rules = super::agents::session_permission_rules(&lease.profile);
    let roots = SkillRoots::for_project(lease.project_dir(), &lease.pool.inner.launch.env);
    for skill in required {
        if let Some(problem) = problem_with(skill, &skills, agent, &session_rules, &roots) {
            return Err(SkillError::Unusable {
                profile: lease.profile.id.clone(),
                skill: skill.clone(),
                problem,
            });
        }
    }
    Ok(())
}

fn problem_with(
    skill: &str,
    skills: &[SkillInfo],
    agent: Option<&AgentInfo>,
    session_rules: &[PermissionRule],
    roots: &SkillRoots,
) -> Option<SkillProblem> {
    if !skills.iter().any(|s| s.name == skill) {
        return Some(match roots.find(skill) {
            Some(path) => {
                let why = frontmatter_fault(&std::fs::read_to_string(&path).unwrap_or_default());
                SkillProblem::InvalidFrontmatter { path, why }
            }
            None => SkillProblem::Missing,
        });
    }
    // OpenCode evaluates the agent's rules, then the session's; the last match wins.
    let mut rules = agent
        .map(|a| a.permission.as_slice())
        .unwrap_or_default()
        .iter()
        .chain(session_rules);
    let last = rules.rfind(|r| wildcard(&r.permission, "skill") && wildcard(&r.pattern, skill))?;
    match last.action {
        PermissionAction::Deny => Some(SkillProblem::Denied {
            pattern: last.pattern.clone(),
        }),
        // `ask` reaches the profile's `onPermissionAsk` when the worker loads it.
        PermissionAction::Allow | PermissionAction::Ask => None,
    }
}

/// What is wrong with a `SKILL.md`'s frontmatter, as far as a line-level look can tell; the
/// YAML itself is OpenCode's to parse.
fn frontmatter_fault(text: &str) -> String {
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("---") {
        return "does not start with a `---` frontmatter line".to_owned();
    }
    let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "---").collect();
    let field = |name: &str| {
        block.iter().any(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(':'))
                .is_some_and(|v| !v.trim().is_empty())
        })
    };
    if !field("name") {
        "has no `name` in its frontmatter".to_owned()
    } else if !field("description") {
        "has no `description` in its frontmatter".to_owned()
    } else {
        "has frontmatter OpenCode could not read (YAML syntax, or a `name` that differs from the \
         folder's)"
            .to_owned()
    }
}

/// OpenCode's wildcard match: `*` any run of characters, `?` one character.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The folders holding `<name>/SKILL.md` that OpenCode 1.18.33 reads.
struct SkillRoots(Vec<PathBuf>);

impl SkillRoots {
    fn for_project(project: &Path, env: &[(String, String)]) -> SkillRoots {
        let var = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(name).ok())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let home = var("HOME");
        let config = var("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")));
        let mut roots = Vec::new();
        for dir in project.ancestors() {
            roots.push(dir.join(".opencode/skill"));
            roots.push(dir.join(".opencode/skills"));
            roots.push(dir.join(".claude/skills"));
            roots.push(dir.join(".agents/skills"));
            if dir.join(".git").exists() {
                break;
            }
        }
        if let Some(config) = config {
            roots.push(config.join("opencode/skill"));
            roots.push(config.join("opencode/skills"));
        }
        if let Some(home) = home {
            roots.push(home.join(".claude/skills"));
            roots.push(home.join(".agents/skills"));
        }
        SkillRoots(roots)
    }

    fn find(&self, skill: &str) -> Option<PathBuf> {
        // A name with a path in it names no skill folder.
        if skill.contains(['/', '\\']) || skill.starts_with('.') {
            return None;
        }
        self.0
            .iter()
            .map(|root| root.join(skill).join("SKILL.md"))
            .find(|path| path.is_file())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rule(pattern: &str, action: PermissionAction) -> PermissionRule {
        PermissionRule {
            permission: "skill".into(),
            pattern: pattern.into(),
            action,
        }
    }

    #[test]
    fn the_last_matching_rule_decides_as_in_opencode() {
        let skills = vec![SkillInfo {
            name: "docs".into(),
            ..SkillInfo::default()
        }];
        let roots = SkillRoots(Vec::new());
        let agent = AgentInfo {
            permission: vec![
                rule("*", PermissionAction::Allow),
                rule("do*", PermissionAction::Deny),
            ],
            ..AgentInfo::default()
        };
        assert_eq!(
            problem_with("docs", &skills, Some(&agent), &[], &roots),
            Some(SkillProblem::Denied {
                pattern: "do*".into()
            })
        );
        let allow_again = [rule("docs", PermissionAction::Allow)];
        assert_eq!(
            problem_with("docs", &skills, Some(&agent), &allow_again, &roots),
            None
        );
        assert_eq!(
            problem_with("gone", &skills, None, &[], &roots),
            Some(SkillProblem::Missing)
        );
    }

    #[test]
    fn wildcards_and_frontmatter_faults() {
        assert!(wildcard("*", "anything"));
        assert!(wildcard("doc?", "docs"));
        assert!(!wildcard("doc", "docs"));
        assert!(wildcard("a*c*e", "abcde"));
        assert!(frontmatter_fault("# no block").contains("`---`"));
        assert!(frontmatter_fault("---\ndescription: x\n---\n").contains("`name`"));
        assert!(frontmatter_fault("---\nname: x\n---\n").contains("`description`"));
        assert!(frontmatter_fault("---\nname: [x\ndescription: y\n---\n").contains("YAML"));
    }
}
