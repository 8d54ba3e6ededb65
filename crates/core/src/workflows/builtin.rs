//! The workflows Orchestra defines itself: `roocode-boomerang`, `vision` and `memory`.

use crate::config::{
    BoomerangStepOverride, Config, WorkflowDefinition, WorkflowStep, model::WorkflowLimitsFile,
};

pub const BOOMERANG_ID: &str = "roocode-boomerang";
pub const VISION_ID: &str = "vision";
pub const MEMORY_ID: &str = crate::memory::MEMORY_WORKFLOW;

/// Asked of every boomerang step so the next step's carry has something to keep.
const HANDOFF: &str = "\n\nEnd your reply with these five sections, each a markdown heading \
followed by short bullet points:\n\
## Summary\n## Actions\n## Artifacts\n## Risks\n## Next\n\
Artifacts lists every file you changed or read closely and every command you ran; \
Risks lists what could still be wrong; Next says exactly what the following step should do.";

const PLAN: &str = "You are planning work that another worker will carry out.\n\n\
Task:\n{task}\n\n\
Read what you need, then write a plan of 3 to 6 numbered, concrete steps (files, functions, \
checks). Put the numbered plan under Summary and the first step to take under Next.";

const IMPLEMENT: &str = "Carry out this plan in the project. Change the files, run what \
proves the change works, and keep to the plan unless it is wrong (then say why).\n\n\
Task:\n{task}\n\n\
Plan:\n{carry}";

const REVIEW: &str = "Review the change described below for correctness, edge cases, \
missing tests and anything the plan asked for that is not done. Read the files; do not edit \
them. List each problem under Risks and the fix for it under Next; say \"No changes needed\" \
under Next if there are none.\n\n\
Task:\n{task}\n\n\
Plan and implementation:\n{carry}";

const FIX: &str = "Apply the fixes the review asks for, then check them. If the review \
found nothing to fix, change nothing and answer \"No changes needed\".\n\n\
Task:\n{task}\n\n\
Plan, implementation and review:\n{carry}";

const VISION: &str = "Look at the attached image(s) for this request:\n{task}\n\n\
Answer with these headings:\n## Summary\n## Text (OCR)\n## Key elements\n\
## Issues or questions\n\
Transcribe visible text exactly under Text (OCR); write \"none\" where a section is empty.";

const MEMORY: &str = "Record what is worth remembering from this turn in the project's \
memory.\n\n\
Payload:\n{task}\n\n\
Use the orchestra_task_start tool with kind \"op\" (give `task` a few words saying why):\n\
- op \"memory.search\", memory {query}: what is already recorded, so you update instead of \
duplicating;\n\
- op \"memory.put\", memory {key, value, kind, title, tags, entities: {files, symbols}}: one \
self-contained record per decision, convention, fact, bug, fix or todo (kind says which); the \
same key updates a record, and {supersedes: <key or id>} replaces an outdated one;\n\
- op \"memory.link\", memory {fromKey, toKey, relation}: connect related records.\n\
If the payload names a memory task, finish with op \"memory.done\", memory {taskId, summary, \
storedKeys, linkedKeys}. Then answer in two or three sentences: what you recorded, updated or \
skipped, and why.";

fn step(id: &str, title: &str, worker: &str, prompt: String, carry: bool) -> WorkflowStep {
    WorkflowStep {
        id: id.to_owned(),
        title: title.to_owned(),
        worker_id: worker.to_owned(),
        prompt,
        carry,
        timeout_ms: None,
        model: None,
        required_skills: Vec::new(),
        until: None,
        parallel: Vec::new(),
    }
}

/// Plan (architect) → implement (coder) → review (architect) → fix (coder). Every step adds
/// its handoff to the carry, so the implementer sees the plan and the fixer sees the review.
/// `workflows.roocodeBoomerang.steps` changes steps by id.
pub fn boomerang(overrides: &[BoomerangStepOverride]) -> WorkflowDefinition {
    let steps = [
        ("plan", "Plan", "architect", PLAN),
        ("implement", "Implement", "coder", IMPLEMENT),
        ("review", "Review", "architect", REVIEW),
        ("fix", "Fix", "coder", FIX),
    ]
    .into_iter()
    .map(|(id, title, worker, prompt)| {
        let mut s = step(id, title, worker, format!("{prompt}{HANDOFF}"), true);
        if let Some(o) = overrides.iter().find(|o| o.id == id) {
            apply(&mut s, o);
        }
        s
    })
    .collect();
    WorkflowDefinition {
        id: BOOMERANG_ID.to_owned(),
        name: "RooCode Boomerang".to_owned(),
        description: Some(
            "Plan, implement, review, and fix in a tight loop with bounded carry.".to_owned(),
        ),
        steps,
        // The boomerang's own limits come from workflows.roocodeBoomerang.
        limits: WorkflowLimitsFile::default(),
    }
}

fn apply(step: &mut WorkflowStep, o: &BoomerangStepOverride) {
    if let Some(title) = &o.title {
        step.title.clone_from(title);
    }
    if let Some(worker) = &o.worker_id {
        step.worker_id.clone_from(worker);
    }
    if let Some(prompt) = &o.prompt {
        step.prompt.clone_from(prompt);
    }
    if let Some(carry) = o.carry {
        step.carry = carry;
    }
    if o.timeout_ms.is_some() {
        step.timeout_ms = o.timeout_ms;
    }
    if o.model.is_some() {
        step.model.clone_from(&o.model);
    }
    if let Some(skills) = &o.required_skills {
        step.required_skills.clone_from(skills);
    }
}

pub fn vision() -> WorkflowDefinition {
    WorkflowDefinition {
        id: VISION_ID.to_owned(),
        name: "Vision Analysis".to_owned(),
        description: Some("Describe and transcribe images on the vision worker.".to_owned()),
        steps: vec![step(
            "analyze",
            "Analyze",
            "vision",
            VISION.to_owned(),
            false,
        )],
        limits: WorkflowLimitsFile::default(),
    }
}

pub fn memory() -> WorkflowDefinition {
    WorkflowDefinition {
        id: MEMORY_ID.to_owned(),
        name: "Memory Capture".to_owned(),
        description: Some(
            "Distil decisions, TODOs and entities from a turn on the memory worker.".to_owned(),
        ),
        steps: vec![step("record", "Record", "memory", MEMORY.to_owned(), false)],
        limits: WorkflowLimitsFile::default(),
    }
}

/// The built-ins this configuration offers: the boomerang unless turned off, vision when a
/// `vision` worker exists, memory when memory is on and a `memory` worker exists.
pub fn builtins(config: &Config) -> Vec<WorkflowDefinition> {
    let mut out = Vec::new();
    let boomerang_config = &config.workflows.roocode_boomerang;
    if boomerang_config.enabled {
        out.push(boomerang(&boomerang_config.steps));
    }
    if config.profiles.contains_key("vision") {
        out.push(vision());
    }
    if config.memory.enabled && config.profiles.contains_key("memory") {
        out.push(memory());
    }
    out
}
