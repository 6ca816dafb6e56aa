//! Which models make room for one more: decided from memory, not counts. Pure: the host gives it what is loaded
//! and what the machine has free, and does what it says.
//!
//! ```text
//! capacity = min(the memoryLimit setting, free now + what the loaded models use now − the memoryReserve setting)
//! fits     = Σ need(the models kept) + need(the new one) ≤ capacity, and at most maxLoaded models
//! need     = the estimate, until the model was measured here; then its measured peak + a margin
//! ```
//!
//! Room is made by unloading idle models, the least recently used first; a model answering a request (busy), one
//! still starting, and a pinned one never give way. When only busy models stand in the way, the new one waits for
//! them; when even an empty machine (bar its pinned models) could not hold it, it is refused at once.

/// A loaded model, as the scheduler weighs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resident {
    pub id: String,
    /// What it is counted as taking.
    pub need: u64,
    /// What it takes now, as last measured (0 while it starts: the machine's free memory has not lost it yet).
    pub using: u64,
    /// Answers in flight, or still starting: it cannot give way now, only later.
    pub busy: bool,
    /// Never unloaded for another.
    pub pinned: bool,
    /// Unix seconds.
    pub last_used: u64,
}

/// The memory models may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// RAM available and GPU memory free now.
    pub free: u64,
    /// What the user keeps for everything else.
    pub reserve: u64,
    /// The most the loaded models may take together, if the user set one.
    pub limit: Option<u64>,
    pub max_loaded: usize,
}

impl Budget {
    /// What the loaded models may take together, given what they take now.
    pub fn capacity(&self, residents: &[Resident]) -> u64 {
        let machine = (self.free + residents.iter().map(|r| r.using).sum::<u64>()).saturating_sub(self.reserve);
        self.limit.map_or(machine, |l| l.min(machine))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Load it now, once these (idle) models have been unloaded.
    Load { unload: Vec<String> },
    /// Busy models stand in the way: look again when one finishes.
    Wait { why: String },
    /// It cannot fit beside the pinned models even on an otherwise empty machine.
    Refuse { why: String },
}

/// Whether `need` bytes more can be loaded beside `residents` within `budget`, and what must give way.
pub fn decide(id: &str, need: u64, residents: &[Resident], budget: &Budget) -> Decision {
    let capacity = budget.capacity(residents);
    let max = budget.max_loaded.max(1);
    let pinned: u64 = residents.iter().filter(|r| r.pinned).map(|r| r.need).sum();
    if need + pinned > capacity {
        let pins = names(residents.iter().filter(|r| r.pinned));
        let beside = if pins.is_empty() { String::new() } else { format!(" beside the pinned {pins}") };
        return Decision::Refuse {
            why: format!("{id} needs {}{beside}, and models may take {} here", gb(need), gb(capacity)),
        };
    }
    let pinned_count = residents.iter().filter(|r| r.pinned).count();
    if pinned_count >= max {
        let pins = names(residents.iter().filter(|r| r.pinned));
        let verb = if pinned_count == 1 { "is" } else { "are" };
        return Decision::Refuse {
            why: format!(
                "{id} cannot load: {pins} {verb} pinned, and at most {max} models are loaded (the maxLoaded setting)"
            ),
        };
    }
    let mut kept: Vec<&Resident> = residents.iter().collect();
    let mut unload = Vec::new();
    // Idle, unpinned models, the least recently used first.
    let mut idle: Vec<&Resident> = residents.iter().filter(|r| !r.busy && !r.pinned).collect();
    idle.sort_by(|a, b| a.last_used.cmp(&b.last_used).then_with(|| a.id.cmp(&b.id)));
    let mut idle = idle.into_iter();
    let fits = |kept: &[&Resident]| kept.iter().map(|r| r.need).sum::<u64>() + need <= capacity && kept.len() < max;
    while !fits(&kept) {
        match idle.next() {
            Some(r) => {
                kept.retain(|k| k.id != r.id);
                unload.push(r.id.clone());
            }
            None => {
                let others: Vec<&Resident> = kept.iter().copied().filter(|r| !r.pinned).collect();
                let verb = if others.len() == 1 { "is" } else { "are" };
                let busy = names(others.into_iter());
                let why = if kept.len() >= max && kept.iter().map(|r| r.need).sum::<u64>() + need <= capacity {
                    format!(
                        "{id} waits: {} models are loaded (the maxLoaded setting) and {busy} {verb} busy",
                        kept.len()
                    )
                } else {
                    let free = gb(free(&kept, capacity));
                    format!("{id} needs {}; {free} of {} is free and {busy} {verb} busy", gb(need), gb(capacity))
                };
                return Decision::Wait { why };
            }
        }
    }
    Decision::Load { unload }
}

fn free(kept: &[&Resident], capacity: u64) -> u64 {
    capacity.saturating_sub(kept.iter().map(|r| r.need).sum())
}

fn names<'a>(rs: impl Iterator<Item = &'a Resident>) -> String {
    let all: Vec<&str> = rs.map(|r| r.id.as_str()).collect();
    match all.as_slice() {
        [] => "none".into(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn gb(bytes: u64) -> String {
    crate::format::bytes(bytes)
}

/// What a model is counted as taking: its measured peak and a margin (a tenth, and 64 MiB for what a longer
/// answer adds) once measured, else the estimate.
pub fn need(estimate: u64, measured: Option<u64>) -> u64 {
    match measured {
        Some(m) if m > 0 => m + m / 10 + (64 << 20),
        _ => estimate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1_000_000_000;

    fn r(id: &str, need: u64, last_used: u64) -> Resident {
        Resident { id: id.into(), need, using: need, busy: false, pinned: false, last_used }
    }

    fn budget(free: u64) -> Budget {
        Budget { free, reserve: 0, limit: None, max_loaded: 8 }
    }

    #[test]
    fn a_model_that_fits_beside_the_others_unloads_nothing() {
        let residents = [r("a", 4 * GB, 1), r("b", 4 * GB, 2)];
        // 2 GB free now, and the 8 GB the two use: 10 GB for models.
        assert_eq!(decide("c", 2 * GB, &residents, &budget(2 * GB)), Decision::Load { unload: vec![] });
    }

    #[test]
    fn the_least_recently_used_idle_models_go_first_and_only_as_many_as_needed() {
        let residents = [r("a", 4 * GB, 5), r("b", 4 * GB, 1), r("c", 4 * GB, 3)];
        assert_eq!(
            decide("d", 5 * GB, &residents, &budget(0)),
            Decision::Load { unload: vec!["b".into(), "c".into()] }
        );
        assert_eq!(decide("d", 4 * GB, &residents, &budget(0)), Decision::Load { unload: vec!["b".into()] });
    }

    #[test]
    fn a_busy_model_is_never_unloaded_the_new_one_waits_for_it() {
        let mut a = r("a", 6 * GB, 1);
        a.busy = true;
        let residents = [a, r("b", 2 * GB, 9)];
        match decide("c", 5 * GB, &residents, &budget(GB)) {
            Decision::Wait { why } => assert_eq!(why, "c needs 5.00 GB; 3.00 GB of 9.00 GB is free and a is busy"),
            other => panic!("{other:?}"),
        }
        // Once it is idle, it is the one to go (with b, the room still short).
        let mut residents = residents;
        residents[0].busy = false;
        assert_eq!(decide("c", 5 * GB, &residents, &budget(GB)), Decision::Load { unload: vec!["a".into()] });
    }

    #[test]
    fn a_pinned_model_stays_and_what_cannot_fit_beside_it_is_refused() {
        let mut a = r("a", 6 * GB, 1);
        a.pinned = true;
        let residents = [a, r("b", 2 * GB, 9)];
        assert_eq!(decide("c", 2 * GB, &residents, &budget(0)), Decision::Load { unload: vec!["b".into()] });
        match decide("c", 3 * GB, &residents, &budget(0)) {
            Decision::Refuse { why } => {
                assert_eq!(why, "c needs 3.00 GB beside the pinned a, and models may take 8.00 GB here")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_count_is_an_upper_bound_too() {
        let residents = [r("a", GB, 2), r("b", GB, 1)];
        let b = Budget { max_loaded: 2, ..budget(100 * GB) };
        assert_eq!(decide("c", GB, &residents, &b), Decision::Load { unload: vec!["b".into()] });
        let mut pinned = residents.clone();
        pinned.iter_mut().for_each(|r| r.pinned = true);
        match decide("c", GB, &pinned, &b) {
            Decision::Refuse { why } => {
                assert_eq!(
                    why,
                    "c cannot load: a and b are pinned, and at most 2 models are loaded (the maxLoaded setting)"
                )
            }
            other => panic!("{other:?}"),
        }
        let mut busy = residents.clone();
        busy.iter_mut().for_each(|r| r.busy = true);
        match decide("c", GB, &busy, &b) {
            Decision::Wait { why } => assert!(why.contains("maxLoaded"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_reserve_and_the_limit_shrink_the_capacity() {
        let residents = [r("a", 4 * GB, 1)];
        let reserved = Budget { reserve: 3 * GB, ..budget(4 * GB) };
        assert_eq!(reserved.capacity(&residents), 5 * GB);
        assert_eq!(decide("b", GB, &residents, &reserved), Decision::Load { unload: vec![] });
        assert_eq!(decide("b", 2 * GB, &residents, &reserved), Decision::Load { unload: vec!["a".into()] });
        let limited = Budget { limit: Some(3 * GB), ..budget(100 * GB) };
        assert!(matches!(decide("b", 4 * GB, &[], &limited), Decision::Refuse { .. }));
    }

    #[test]
    fn a_measured_model_counts_its_peak_and_a_margin() {
        assert_eq!(need(5 * GB, None), 5 * GB);
        assert_eq!(need(5 * GB, Some(GB)), GB + GB / 10 + (64 << 20));
    }
}
