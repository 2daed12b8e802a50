//! Graph algorithms over a DAG's tasks: topological order, cycle reporting, priorities.
//!
//! Pure functions over task ids and upstream lists; used by validation (cycles) and by the
//! executor (ordering, Airflow's `downstream`/`upstream`/`absolute` weight rules).

use std::collections::HashMap;

use crate::model::{Dag, WeightRule};

/// Topologically sort `n` nodes given upstream index lists; `Err(cycle)` lists one cycle's
/// nodes in order (first repeated at the end). Independent nodes keep their index order.
pub fn topo_sort(upstream: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = upstream.len();
    let mut indeg = vec![0usize; n];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ups) in upstream.iter().enumerate() {
        indeg[i] = ups.len();
        for &u in ups {
            down[u].push(i);
        }
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..n)
        .filter(|&i| indeg[i] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in &down[i] {
            indeg[d] -= 1;
            if indeg[d] == 0 {
                ready.push(std::cmp::Reverse(d));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Find a cycle among the remaining nodes by walking upstream edges.
    let start = (0..n).find(|&i| indeg[i] > 0).unwrap_or(0);
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut path = Vec::new();
    let mut cur = start;
    loop {
        if let Some(&pos) = seen.get(&cur) {
            let mut cycle: Vec<usize> = path[pos..].to_vec();
            cycle.reverse();
            cycle.push(cycle[0]);
            return Err(cycle);
        }
        seen.insert(cur, path.len());
        path.push(cur);
        match upstream[cur].iter().find(|&&u| indeg[u] > 0) {
            Some(&u) => cur = u,
            None => return Err(vec![start]),
        }
    }
}

/// Airflow's effective priority weights, indexed like `dag.tasks`.
pub fn effective_priorities(dag: &Dag) -> Vec<i64> {
    let n = dag.tasks.len();
    let own: Vec<i64> = dag.tasks.values().map(|t| t.priority_weight).collect();
    let needs_sets = dag
        .tasks
        .values()
        .any(|t| t.weight_rule != WeightRule::Absolute);
    if !needs_sets {
        return own;
    }
    let idx = |id: &str| dag.tasks.get_index_of(id);
    let ups: Vec<Vec<usize>> = dag
        .tasks
        .values()
        .map(|t| t.upstream.iter().filter_map(|u| idx(u)).collect())
        .collect();
    let downs: Vec<Vec<usize>> = dag
        .tasks
        .values()
        .map(|t| t.downstream.iter().filter_map(|u| idx(u)).collect())
        .collect();
    let order: Vec<usize> = dag.topo_order.iter().filter_map(|t| idx(t)).collect();
    // Bitset reachability; fall back to own weights for huge DAGs to bound memory.
    if n > 20_000 || order.len() != n {
        return own;
    }
    let words = n.div_ceil(64);
    let closure = |edges: &Vec<Vec<usize>>, order: &mut dyn Iterator<Item = usize>| {
        let mut sets = vec![0u64; n * words];
        for i in order {
            for &j in &edges[i] {
                sets[i * words + j / 64] |= 1 << (j % 64);
                for w in 0..words {
                    let v = sets[j * words + w];
                    sets[i * words + w] |= v;
                }
            }
        }
        sets
    };
    let uniform = own.windows(2).all(|w| w[0] == w[1]);
    let sum = |sets: &[u64], i: usize| -> i64 {
        if uniform {
            let count: u32 = sets[i * words..(i + 1) * words]
                .iter()
                .map(|w| w.count_ones())
                .sum();
            return own[i].saturating_add(own[i].saturating_mul(i64::from(count)));
        }
        let mut total = own[i];
        for w in 0..words {
            let mut bits = sets[i * words + w];
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                total = total.saturating_add(own[w * 64 + b]);
                bits &= bits - 1;
            }
        }
        total
    };
    let down_sets = if dag
        .tasks
        .values()
        .any(|t| t.weight_rule == WeightRule::Downstream)
    {
        closure(&downs, &mut order.iter().rev().copied())
    } else {
        Vec::new()
    };
    let up_sets = if dag
        .tasks
        .values()
        .any(|t| t.weight_rule == WeightRule::Upstream)
    {
        closure(&ups, &mut order.iter().copied())
    } else {
        Vec::new()
    };
    dag.tasks
        .values()
        .enumerate()
        .map(|(i, t)| match t.weight_rule {
            WeightRule::Absolute => own[i],
            WeightRule::Downstream => sum(&down_sets, i),
            WeightRule::Upstream => sum(&up_sets, i),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_weight_rules() {
        let text = "d:\n  tasks:\n    a:\n      operator: echo\n    b:\n      operator: echo\n      dependencies: [a]\n      priority_weight: 5\n    c:\n      operator: echo\n      dependencies: [b]\n      weight_rule: absolute\n";
        let (dags, errs) = crate::load::parse_dag_file(
            std::path::Path::new("x.yaml"),
            text,
            &crate::load::FolderConfig::default(),
            &crate::load::AnyOperator,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(effective_priorities(&dags[0]), vec![7, 6, 1]);
        let text2 = "d:\n  tasks:\n    a:\n      operator: echo\n    b:\n      operator: echo\n      dependencies: [a]\n    c:\n      operator: echo\n      dependencies: [a]\n";
        let (dags, _) = crate::load::parse_dag_file(
            std::path::Path::new("x.yaml"),
            text2,
            &crate::load::FolderConfig::default(),
            &crate::load::AnyOperator,
        );
        assert_eq!(effective_priorities(&dags[0]), vec![3, 1, 1]);
    }

    #[test]
    fn sorts_and_finds_cycles() {
        assert_eq!(topo_sort(&[vec![], vec![0], vec![1]]), Ok(vec![0, 1, 2]));
        assert_eq!(topo_sort(&[vec![2], vec![], vec![1]]), Ok(vec![1, 2, 0]));
        let cyc = topo_sort(&[vec![], vec![0, 2], vec![1]]).unwrap_err();
        assert_eq!(cyc.first(), cyc.last());
        assert_eq!(cyc.len(), 3);
    }
}
