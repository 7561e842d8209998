//! Name scopes as a tree, and which of them are drawn open (a box around their nodes) or
//! collapsed (one node standing for all of them).

use crate::graph_view::GraphView;
use std::collections::{BTreeSet, HashMap};

/// Which scopes are collapsed. Precedence: `collapse`, then `expand`, then `max_depth`,
/// then `collapsed_by_default`, then the `max_visible_nodes` budget.
#[derive(Debug, Clone, PartialEq)]
pub struct CollapseOptions {
    /// Top-level scopes collapsed unless expanded; a TF-style numeric suffix matches too
    /// (`gradients_1`, `Adam_2`). By default the gradient and optimizer subgraphs.
    pub collapsed_by_default: Vec<String>,
    /// Full scope paths drawn open, with their enclosing scopes.
    pub expand: BTreeSet<String>,
    /// Full scope paths drawn as one node.
    pub collapse: BTreeSet<String>,
    /// Scopes nested deeper than this are collapsed (1: only top-level scopes open; 0:
    /// every scope collapsed).
    pub max_depth: Option<usize>,
    /// When more items than this would be visible, the deepest open scopes are collapsed,
    /// level by level, so that a large graph stays readable.
    pub max_visible_nodes: Option<usize>,
}

/// The gradient and optimizer scopes, collapsed unless asked for.
pub const TRAINING_SCOPES: [&str; 4] = ["gradients", "GradientDescent", "Momentum", "Adam"];

impl Default for CollapseOptions {
    fn default() -> Self {
        CollapseOptions {
            collapsed_by_default: TRAINING_SCOPES.iter().map(|s| s.to_string()).collect(),
            expand: BTreeSet::new(),
            collapse: BTreeSet::new(),
            max_depth: None,
            max_visible_nodes: Some(120),
        }
    }
}

impl CollapseOptions {
    /// Every scope open, however large the graph.
    pub fn expand_all() -> CollapseOptions {
        CollapseOptions {
            collapsed_by_default: Vec::new(),
            max_visible_nodes: None,
            ..CollapseOptions::default()
        }
    }

    /// Every scope collapsed: the graph at its top level.
    pub fn collapse_all() -> CollapseOptions {
        CollapseOptions {
            max_depth: Some(0),
            ..CollapseOptions::default()
        }
    }

    pub(crate) fn is_collapsed_by_default(&self, top_level: &str) -> bool {
        self.collapsed_by_default.iter().any(|name| {
            top_level == name
                || top_level.strip_prefix(name.as_str()).is_some_and(|rest| {
                    rest.len() > 1
                        && rest.starts_with('_')
                        && rest[1..].bytes().all(|b| b.is_ascii_digit())
                })
        })
    }
}

/// One name scope; index 0 of the tree is the root (the graph's top level).
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub path: String,
    pub name: String,
    pub depth: usize,
    pub parent: Option<usize>,
    pub child_scopes: Vec<usize>,
    /// Indices (into `GraphView::nodes`) of the nodes directly in this scope.
    pub nodes: Vec<usize>,
    /// Every node in this scope and below, in index order.
    pub all_nodes: Vec<usize>,
    pub open: bool,
}

/// What a container (the root or an open scope) holds, and what a node is drawn as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Item {
    Node(usize),
    /// A collapsed scope: one box for all its nodes.
    Collapsed(usize),
    /// An open scope: a box around its own layout.
    Open(usize),
}

pub(crate) struct ScopeTree {
    pub scopes: Vec<Scope>,
    /// For each node index, the scope it lives in directly.
    pub scope_of_node: Vec<usize>,
}

pub(crate) const ROOT: usize = 0;

impl ScopeTree {
    pub(crate) fn build(graph: &GraphView, options: &CollapseOptions) -> ScopeTree {
        let mut tree = ScopeTree {
            scopes: vec![Scope {
                path: String::new(),
                name: String::new(),
                depth: 0,
                parent: None,
                child_scopes: Vec::new(),
                nodes: Vec::new(),
                all_nodes: Vec::new(),
                open: true,
            }],
            scope_of_node: Vec::with_capacity(graph.nodes.len()),
        };
        let mut by_path: HashMap<String, usize> = HashMap::new();
        for (index, node) in graph.nodes.iter().enumerate() {
            let mut current = ROOT;
            let mut path = String::new();
            // Empty components (`a//b`) carry no meaning; skip them.
            for part in node.scope.split('/').filter(|p| !p.is_empty()) {
                if !path.is_empty() {
                    path.push('/');
                }
                path.push_str(part);
                current = match by_path.get(&path) {
                    Some(&existing) => existing,
                    None => tree.add_scope(current, &path, part, &mut by_path),
                };
                tree.scopes[current].all_nodes.push(index);
            }
            tree.scopes[ROOT].all_nodes.push(index);
            tree.scopes[current].nodes.push(index);
            tree.scope_of_node.push(current);
        }
        tree.decide_open(options);
        tree
    }

    fn add_scope(
        &mut self,
        parent: usize,
        path: &str,
        name: &str,
        by_path: &mut HashMap<String, usize>,
    ) -> usize {
        let index = self.scopes.len();
        self.scopes.push(Scope {
            path: path.to_string(),
            name: name.to_string(),
            depth: self.scopes[parent].depth + 1,
            parent: Some(parent),
            child_scopes: Vec::new(),
            nodes: Vec::new(),
            all_nodes: Vec::new(),
            open: true,
        });
        self.scopes[parent].child_scopes.push(index);
        by_path.insert(path.to_string(), index);
        index
    }

    fn decide_open(&mut self, options: &CollapseOptions) {
        // Expanding a scope opens the scopes around it too.
        let mut forced_open = vec![false; self.scopes.len()];
        for (index, scope) in self.scopes.iter().enumerate() {
            if options.expand.contains(&scope.path) {
                let mut at = Some(index);
                while let Some(s) = at {
                    forced_open[s] = true;
                    at = self.scopes[s].parent;
                }
            }
        }
        for (scope, &forced) in self.scopes.iter_mut().zip(&forced_open).skip(1) {
            let top_level = scope.path.split('/').next().unwrap_or("");
            scope.open = if options.collapse.contains(&scope.path) {
                false
            } else if forced {
                true
            } else if options.max_depth.is_some_and(|max| scope.depth > max) {
                false
            } else {
                !options.is_collapsed_by_default(top_level)
            };
        }
        if let Some(budget) = options.max_visible_nodes {
            self.fit_budget(budget, &forced_open);
        }
    }

    /// Collapses the deepest open scopes, a level at a time, until at most `budget` items
    /// are visible or nothing more may be collapsed.
    fn fit_budget(&mut self, budget: usize, forced_open: &[bool]) {
        while self.visible_count() > budget {
            let deepest = self
                .visible_open_scopes()
                .filter(|&s| !forced_open[s])
                .map(|s| self.scopes[s].depth)
                .max();
            let Some(depth) = deepest else { return };
            let victims: Vec<usize> = self
                .visible_open_scopes()
                .filter(|&s| !forced_open[s] && self.scopes[s].depth == depth)
                .collect();
            for s in victims {
                self.scopes[s].open = false;
            }
        }
    }

    /// Open scopes (not the root) whose enclosing scopes are all open.
    fn visible_open_scopes(&self) -> impl Iterator<Item = usize> + '_ {
        (1..self.scopes.len()).filter(|&s| self.scopes[s].open && self.is_shown(s))
    }

    /// Whether every scope enclosing `scope` is open.
    fn is_shown(&self, scope: usize) -> bool {
        let mut at = self.scopes[scope].parent;
        while let Some(s) = at {
            if !self.scopes[s].open {
                return false;
            }
            at = self.scopes[s].parent;
        }
        true
    }

    /// Boxes a drawing would show: nodes in open scopes plus collapsed scopes.
    pub(crate) fn visible_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![ROOT];
        while let Some(s) = stack.pop() {
            count += self.scopes[s].nodes.len();
            for &child in &self.scopes[s].child_scopes {
                if self.scopes[child].open {
                    stack.push(child);
                } else {
                    count += 1;
                }
            }
        }
        count
    }

    /// What node `index` is drawn as: itself, or its outermost collapsed scope.
    pub(crate) fn representative(&self, node: usize) -> Item {
        let mut outermost_closed = None;
        let mut at = Some(self.scope_of_node[node]);
        while let Some(s) = at {
            if !self.scopes[s].open {
                outermost_closed = Some(s);
            }
            at = self.scopes[s].parent;
        }
        outermost_closed.map_or(Item::Node(node), Item::Collapsed)
    }

    /// The container an item is drawn in.
    pub(crate) fn container_of(&self, item: Item) -> usize {
        match item {
            Item::Node(node) => self.scope_of_node[node],
            Item::Collapsed(s) | Item::Open(s) => self.scopes[s].parent.unwrap_or(ROOT),
        }
    }

    /// The open scopes from the root down to `container`, inclusive.
    pub(crate) fn chain(&self, container: usize) -> Vec<usize> {
        let mut chain = vec![container];
        let mut at = self.scopes[container].parent;
        while let Some(s) = at {
            chain.push(s);
            at = self.scopes[s].parent;
        }
        chain.reverse();
        chain
    }

    /// The items drawn directly in an open scope, in program order (by first node).
    pub(crate) fn children(&self, container: usize) -> Vec<Item> {
        let scope = &self.scopes[container];
        let mut children: Vec<(usize, Item)> = scope
            .nodes
            .iter()
            .map(|&n| (n, Item::Node(n)))
            .chain(scope.child_scopes.iter().map(|&s| {
                let first = self.scopes[s].all_nodes.first().copied().unwrap_or(0);
                let item = if self.scopes[s].open {
                    Item::Open(s)
                } else {
                    Item::Collapsed(s)
                };
                (first, item)
            }))
            .collect();
        children.sort();
        children.into_iter().map(|(_, item)| item).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph_view::NodeView;

    fn graph(names: &[&str]) -> GraphView {
        GraphView {
            nodes: names
                .iter()
                .enumerate()
                .map(|(i, n)| NodeView::new(i, *n, "Op"))
                .collect(),
            edges: Vec::new(),
        }
    }

    #[test]
    fn training_scopes_collapse_by_default() {
        let g = graph(&[
            "x",
            "layer/MatMul",
            "gradients/a/b",
            "gradients_1/c",
            "Adam/u",
        ]);
        let tree = ScopeTree::build(&g, &CollapseOptions::default());
        assert_eq!(tree.representative(1), Item::Node(1));
        assert!(
            matches!(tree.representative(2), Item::Collapsed(s) if tree.scopes[s].path == "gradients")
        );
        assert!(matches!(tree.representative(3), Item::Collapsed(_)));
        assert!(matches!(tree.representative(4), Item::Collapsed(_)));
        assert_eq!(tree.visible_count(), 5);
    }

    #[test]
    fn expanding_a_nested_scope_opens_its_parents() {
        let g = graph(&["gradients/a/b", "gradients/c"]);
        let mut options = CollapseOptions::default();
        options.expand.insert("gradients/a".into());
        let tree = ScopeTree::build(&g, &options);
        assert_eq!(tree.representative(0), Item::Node(0));
        assert_eq!(tree.representative(1), Item::Node(1));
    }

    #[test]
    fn the_budget_collapses_deepest_scopes_first() {
        let names: Vec<String> = (0..40)
            .map(|i| format!("outer/inner{}/n{i}", i % 4))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let options = CollapseOptions {
            max_visible_nodes: Some(10),
            ..CollapseOptions::default()
        };
        let tree = ScopeTree::build(&graph(&refs), &options);
        assert_eq!(tree.visible_count(), 4);
        assert!(tree.scopes[1].open, "outer stays open");
    }
}
