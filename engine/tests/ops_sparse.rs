//! The ops of sparse models: segment reductions, unique, hashing, scatters, embedding lookups,
//! and the sparse gradients (`IndexedSlices`) that gathers make.
#![cfg(feature = "engine")]

mod common;
use common::*;
use sluice::prelude::*;

fn run_err(fetch: Output) -> String {
    let g = fetch.graph().unwrap();
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    sess.run(&[fetch], &[]).unwrap_err().to_string()
}

#[test]
fn unsorted_segment_sum_adds_rows_by_id_in_any_order() {
    let g = Graph::new();
    let data = g.constant(Tensor::new(&[4, 2], vec![1.0f32, 2., 3., 4., 5., 6., 7., 8.]).unwrap());
    let ids = g.constant(Tensor::from_vec(vec![2i32, 0, 2, 0]));
    let fixed = unsorted_segment_sum(data, ids, Some(4));
    assert_eq!(fixed.type_shape().unwrap().shape.to_string(), "[4, 2]");
    let got = eval(fixed, &[]);
    assert_eq!(
        got.to_vec::<f32>().unwrap(),
        vec![10., 12., 0., 0., 6., 8., 0., 0.]
    );
    // Without a count: as many rows as the largest id plus one.
    let grown = eval(unsorted_segment_sum(data, ids, None), &[]);
    assert_eq!(grown.shape(), &[3, 2]);
    // Ids of rank 2 pick rows of the leading two axes; integer data adds too.
    let ints = g.constant(Tensor::new(&[2, 2], vec![1i64, 2, 3, 4]).unwrap());
    let ids2 = g.constant(Tensor::new(&[2, 2], vec![1i64, 1, 0, 1]).unwrap());
    let summed = eval(unsorted_segment_sum(ints, ids2, Some(2)), &[]);
    assert_eq!(summed.to_vec::<i64>().unwrap(), vec![3, 7]);
}

#[test]
fn segment_ids_out_of_range_or_unsorted_are_named() {
    let g = Graph::new();
    let data = g.constant(Tensor::from_vec(vec![1.0f32, 2., 3.]));
    let ids = g.constant(Tensor::from_vec(vec![0i64, 5, 1]));
    let e = run_err(unsorted_segment_sum(data, ids, Some(3)));
    assert!(e.contains("segment id 5 (at position 1)"), "{e}");
    let negative = g.constant(Tensor::from_vec(vec![0i64, -1, 1]));
    let e = run_err(unsorted_segment_sum(data, negative, None));
    assert!(e.contains("segment id -1"), "{e}");
    let unsorted = g.constant(Tensor::from_vec(vec![0i64, 2, 1]));
    let e = run_err(segment_sum(data, unsorted));
    assert!(
        e.contains("must be sorted: 1 at position 2 follows 2"),
        "{e}"
    );
    // Ids that would make a huge output are held to the memory budget, not allocated.
    let huge = g.constant(Tensor::from_vec(vec![0i64, 1 << 40, 1]));
    let e = run_err(unsorted_segment_sum(data, huge, None));
    assert!(e.contains("budget") || e.contains("memory"), "{e}");
    // Data whose leading axes are not the ids' shape is refused when the graph is built.
    let short = g.constant(Tensor::from_vec(vec![0i64, 1]));
    let bad = unsorted_segment_sum(data, short, Some(2));
    let e = bad.type_shape().unwrap_err().to_string();
    assert!(e.contains("leading axes"), "{e}");
}

#[test]
fn segment_sum_and_mean_reduce_sorted_runs() {
    let g = Graph::new();
    let data = g.constant(Tensor::new(&[4, 2], vec![1.0f32, 2., 3., 4., 5., 6., 7., 8.]).unwrap());
    let ids = g.constant(Tensor::from_vec(vec![0i64, 0, 2, 2]));
    let sums = eval(segment_sum(data, ids), &[]);
    assert_eq!(sums.shape(), &[3, 2]);
    assert_eq!(
        sums.to_vec::<f32>().unwrap(),
        vec![4., 6., 0., 0., 12., 14.]
    );
    let means = eval(segment_mean(data, ids), &[]);
    assert_eq!(means.to_vec::<f32>().unwrap(), vec![2., 3., 0., 0., 6., 7.]);
}

#[test]
fn segment_gradients_match_finite_differences() {
    let ids = Tensor::from_vec(vec![1i64, 0, 1, 1, 3]);
    let sorted = Tensor::from_vec(vec![0i64, 0, 1, 3, 3]);
    check_gradient(&[sample(&[5, 3], 1), ids], |x| {
        unsorted_segment_sum(x[0], x[1], Some(4))
    });
    check_gradient(&[sample(&[5, 3], 2), sorted.clone()], |x| {
        segment_sum(x[0], x[1])
    });
    check_gradient(&[sample(&[5, 3], 3), sorted], |x| segment_mean(x[0], x[1]));
}

#[test]
fn unique_lists_first_appearances_and_positions() {
    let g = Graph::new();
    let x = g.constant(Tensor::from_vec(vec![7i32, 3, 7, 9, 3, 3]));
    let (y, idx) = unique(x);
    let mut sess = Session::new(&g);
    let out = sess.run(&[y, idx, gather(y, idx)], &[]).unwrap();
    assert_eq!(out[0].to_vec::<i32>().unwrap(), vec![7, 3, 9]);
    assert_eq!(out[1].to_vec::<i64>().unwrap(), vec![0, 1, 0, 2, 1, 1]);
    assert_eq!(out[2].to_vec::<i32>().unwrap(), vec![7, 3, 7, 9, 3, 3]);
}

#[test]
fn hashed_features_land_in_stable_spread_buckets() {
    let g = Graph::new();
    let ids: Vec<i64> = (0..20_000).map(|i| i * 7919 - 50_000).collect();
    let x = g.constant(Tensor::from_vec(ids.clone()));
    let narrow = g.constant(Tensor::from_vec(
        ids.iter().map(|&i| i as i32).collect::<Vec<_>>(),
    ));
    let mut sess = Session::new(&g);
    let out = sess
        .run(&[hash_bucket(x, 100), hash_bucket(narrow, 100)], &[])
        .unwrap();
    let buckets = out[0].to_vec::<i64>().unwrap();
    // The same bucket for a value whatever its integer type, and the host's helper agrees.
    assert_eq!(buckets, out[1].to_vec::<i64>().unwrap());
    assert_eq!(buckets[17], bucket_of(ids[17], 100));
    let mut counts = [0usize; 100];
    for &b in &buckets {
        assert!((0..100).contains(&b));
        counts[b as usize] += 1;
    }
    // 200 per bucket on average: a fair hash keeps every bucket well within 2x.
    assert!(
        counts.iter().all(|&c| (100..300).contains(&c)),
        "{counts:?}"
    );
    let e = hash_bucket(x, 0).type_shape().unwrap_err().to_string();
    assert!(e.contains("buckets must be at least 1"), "{e}");
}

#[test]
fn scatters_change_only_the_rows_named() {
    let g = Graph::new();
    let table = g.variable_with("table", DType::F32, &[4, 2], Initializer::Ones, false);
    let rows = g.constant(Tensor::from_vec(vec![3i64, 1, 3]));
    let ups = g.constant(Tensor::new(&[3, 2], vec![1.0f32, 2., 3., 4., 5., 6.]).unwrap());
    let add = scatter_add(table, rows, ups).unwrap();
    let sub = scatter_sub(table, rows, ups).unwrap();
    let set = scatter_update(table, rows, ups).unwrap();
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    let value = |sess: &Session| sess.variable(table).unwrap().to_vec::<f32>().unwrap();
    sess.run_with_targets(&[], &[], &[add]).unwrap();
    // Repeated rows add every update.
    assert_eq!(value(&sess), vec![1., 1., 4., 5., 1., 1., 7., 9.]);
    sess.run_with_targets(&[], &[], &[sub]).unwrap();
    assert_eq!(value(&sess), vec![1.; 8]);
    sess.run_with_targets(&[], &[], &[set]).unwrap();
    assert_eq!(value(&sess), vec![1., 1., 3., 4., 1., 1., 5., 6.]);

    // A row out of range is named, and the variable is left as it was.
    let bad_rows = g.constant(Tensor::from_vec(vec![0i64, 4, 1]));
    let bad = scatter_add(table, bad_rows, ups).unwrap();
    let e = sess
        .run_with_targets(&[], &[], &[bad])
        .unwrap_err()
        .to_string();
    assert!(e.contains("index 4") && e.contains("out of range"), "{e}");
    assert_eq!(value(&sess), vec![1., 1., 3., 4., 1., 1., 5., 6.]);
    // Updates of the wrong row shape are refused when the graph is built.
    let wrong = g.constant(Tensor::new(&[3, 3], vec![0.0f32; 9]).unwrap());
    let e = scatter_add(table, rows, wrong).unwrap_err().to_string();
    assert!(e.contains("updates are"), "{e}");
}

#[test]
fn embedding_lookup_sparse_combines_each_examples_rows() {
    let g = Graph::new();
    let table =
        g.constant(Tensor::new(&[4, 2], vec![1.0f32, 0., 0., 2., 3., 3., -1., 4.]).unwrap());
    // Example 0: ids 1, 3, 1; example 1: id 2.
    let segments = g.constant(Tensor::from_vec(vec![0i64, 0, 0, 1]));
    let ids = g.constant(Tensor::from_vec(vec![1i64, 3, 1, 2]));
    let weights = g.constant(Tensor::from_vec(vec![1.0f32, 2., 1., 4.]));
    let lookup = |weights, combiner| {
        let sparse = SparseIds {
            segments,
            ids,
            weights,
        };
        eval(embedding_lookup_sparse(table, sparse, combiner), &[])
            .to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(lookup(None, Combiner::Sum), vec![-1., 8., 3., 3.]);
    let mean = lookup(None, Combiner::Mean);
    assert_close(
        &Tensor::new(&[2, 2], mean).unwrap(),
        &Tensor::new(&[2, 2], vec![-1.0f32 / 3., 8. / 3., 3., 3.]).unwrap(),
        1e-6,
    );
    let sqrtn = lookup(None, Combiner::SqrtN);
    let r3 = 3.0f32.sqrt();
    assert!((sqrtn[1] - 8. / r3).abs() < 1e-5, "{sqrtn:?}");
    // Weighted: 1*(0,2) + 2*(-1,4) + 1*(0,2) = (-2, 12); weights sum 4; squares sum 6.
    assert_eq!(
        lookup(Some(weights), Combiner::Sum),
        vec![-2., 12., 12., 12.]
    );
    assert_eq!(
        lookup(Some(weights), Combiner::Mean),
        vec![-0.5, 3., 3., 3.]
    );
    let weighted_sqrtn = lookup(Some(weights), Combiner::SqrtN);
    assert!((weighted_sqrtn[1] - 12. / 6.0f32.sqrt()).abs() < 1e-5);
}

#[test]
fn embedding_lookup_sparse_gradient_matches_finite_differences() {
    let segments = Tensor::from_vec(vec![0i64, 0, 1, 1, 1]);
    let ids = Tensor::from_vec(vec![2i64, 0, 2, 2, 3]);
    for combiner in [Combiner::Sum, Combiner::Mean, Combiner::SqrtN] {
        check_gradient(&[sample(&[5, 3], 4), segments.clone(), ids.clone()], |x| {
            let sparse = SparseIds {
                segments: x[1],
                ids: x[2],
                weights: None,
            };
            embedding_lookup_sparse(x[0], sparse, combiner)
        });
    }
    let weights = Tensor::from_vec(vec![0.5f64, 2.0, 1.0, -1.5, 3.0]);
    check_gradient(&[sample(&[5, 3], 5), segments, ids, weights], |x| {
        let sparse = SparseIds {
            segments: x[1],
            ids: x[2],
            weights: Some(x[3]),
        };
        embedding_lookup_sparse(x[0], sparse, Combiner::Mean)
    });
}

#[test]
fn gathers_give_sparse_gradients_that_add_up_without_densifying() {
    let g = Graph::new();
    let table = g.variable("table", &[6, 2], Initializer::Fill(0.5));
    let other = g.variable("other", &[2], Initializer::Ones);
    let a = g.constant(Tensor::from_vec(vec![4i64, 1]));
    let b = g.constant(Tensor::new(&[1, 2], vec![1i32, 1]).unwrap());
    let loss = reduce_sum(square(gather(table, a))) + reduce_sum(gather(table, b) * other);
    let grads = gradient_values(&[loss], &[table, other]).unwrap();
    let rows = grads[0].clone().unwrap();
    let rows = rows
        .as_sparse()
        .expect("the table's gradient is rows")
        .clone();
    assert!(grads[1].clone().unwrap().as_sparse().is_none());
    assert_eq!(rows.dense_shape.to_string(), "[6, 2]");
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    let deduped = rows.deduplicate();
    let out = sess
        .run(
            &[
                rows.indices,
                rows.values,
                rows.to_dense(),
                deduped.indices,
                deduped.values,
            ],
            &[],
        )
        .unwrap();
    // Two gathers' rows one after the other: 2 * 0.5 for the squares, `other` for the rest.
    let mut ids = out[0].to_vec::<i64>().unwrap();
    ids.sort();
    assert_eq!(ids, vec![1, 1, 1, 4]);
    assert_eq!(out[1].shape(), &[4, 2]);
    assert_eq!(out[1].to_vec::<f32>().unwrap(), vec![1.; 8]);
    let dense = gradients(&[loss], &[table]).unwrap()[0].unwrap();
    let want = sess.run(&[dense], &[]).unwrap().remove(0);
    assert_eq!(out[2], want);
    assert_eq!(
        want.to_vec::<f32>().unwrap(),
        vec![0., 0., 3., 3., 0., 0., 0., 0., 1., 1., 0., 0.]
    );
    // Each row once, its values summed.
    let ids = out[3].to_vec::<i64>().unwrap();
    let values = out[4].to_vec::<f32>().unwrap();
    let mut pairs: Vec<(i64, f32)> = ids
        .iter()
        .zip(values.chunks(2))
        .map(|(&i, v)| (i, v[0]))
        .collect();
    pairs.sort_by_key(|p| p.0);
    assert_eq!(pairs, vec![(1, 3.0), (4, 1.0)]);
}

#[test]
fn a_table_read_whole_gets_a_dense_gradient() {
    let g = Graph::new();
    let table = g.variable("table", &[3, 2], Initializer::Ones);
    let ids = g.constant(Tensor::from_vec(vec![0i64]));
    let loss = reduce_sum(gather(table, ids)) + reduce_sum(table);
    let grad = gradient_values(&[loss], &[table]).unwrap()[0]
        .clone()
        .unwrap();
    let Gradient::Dense(dense) = grad else {
        panic!("a gradient of rows and a dense one add up densely: {grad:?}");
    };
    assert_eq!(
        eval(dense, &[]).to_vec::<f32>().unwrap(),
        vec![2., 2., 1., 1., 1., 1.]
    );
}

#[test]
fn weighted_rows_scale_or_drop_a_replicas_rows() {
    let g = Graph::new();
    let table = g.variable("table", &[4, 2], Initializer::Ones);
    let ids = g.constant(Tensor::from_vec(vec![3i64, 1]));
    let rows = IndexedSlices::for_rows(table, ids, gather(table, ids)).unwrap();
    let weight = g.placeholder("weight", DType::F32, &[]);
    let kept = rows.weighted(weight);
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    let run = |sess: &mut Session, w: f32| {
        sess.run(&[kept.indices, kept.values], &[(weight, Tensor::scalar(w))])
            .unwrap()
    };
    let half = run(&mut sess, 0.5);
    assert_eq!(half[0].to_vec::<i64>().unwrap(), vec![3, 1]);
    assert_eq!(half[1].to_vec::<f32>().unwrap(), vec![0.5; 4]);
    // A replica left out of the step: no rows, so a sparse update touches none.
    let none = run(&mut sess, 0.0);
    assert_eq!(none[0].shape(), &[0]);
    assert_eq!(none[1].shape(), &[0, 2]);
}
