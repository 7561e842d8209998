//! Tables split by rows over shard variables: the `mod` and `div` maps, lookups that equal a
//! gather from the whole table, training that gives the whole table's weights, and errors.
#![cfg(feature = "engine")]

use sluice::prelude::*;

#[test]
fn mod_and_div_map_every_id_to_one_row_of_one_shard() {
    for strategy in [PartitionStrategy::Mod, PartitionStrategy::Div] {
        for rows in [1usize, 2, 7, 10, 64, 101] {
            for shards in 1..=rows.min(6) {
                let sizes = strategy.shard_rows(rows, shards);
                assert_eq!(sizes.iter().sum::<usize>(), rows);
                let mut seen: Vec<Vec<bool>> = sizes.iter().map(|&n| vec![false; n]).collect();
                let mut last_shard = 0;
                for id in 0..rows {
                    let (p, local) = strategy.locate(id, rows, shards);
                    assert!(
                        !seen[p][local],
                        "{strategy:?} {rows}/{shards}: id {id} twice"
                    );
                    seen[p][local] = true;
                    if strategy == PartitionStrategy::Div {
                        assert!(p >= last_shard, "div ranges are contiguous");
                        last_shard = p;
                    }
                }
                assert!(seen.iter().flatten().all(|&s| s));
            }
        }
    }
    // TensorFlow's split of 10 rows into 3: 4, 3, 3 either way.
    assert_eq!(PartitionStrategy::Div.shard_rows(10, 3), vec![4, 3, 3]);
    assert_eq!(PartitionStrategy::Div.locate(4, 10, 3), (1, 0));
    assert_eq!(PartitionStrategy::Mod.locate(4, 10, 3), (1, 1));
}

/// The whole table as a session holds its shards.
fn table_in(sess: &Session, table: &PartitionedVariable) -> Tensor {
    let shards: Vec<Tensor> = (table.shards.iter())
        .map(|&s| sess.variable(s).unwrap())
        .collect();
    table.assemble(&shards).unwrap()
}

fn table_value(rows: usize, dim: usize) -> Tensor {
    let values = (0..rows * dim).map(|k| k as f32 * 0.5 - 3.0).collect();
    Tensor::new(&[rows, dim], values).unwrap()
}

#[test]
fn lookups_equal_a_gather_from_the_whole_table() {
    let whole = table_value(11, 3);
    for strategy in [PartitionStrategy::Mod, PartitionStrategy::Div] {
        let g = Graph::new();
        let init = Initializer::Constant(whole.clone());
        let split = Partitioner::fixed(4, strategy);
        let table = PartitionedVariable::new(&g, "emb", &[11, 3], init.clone(), &split).unwrap();
        assert_eq!(table.shards.len(), 4);
        let reference = g.variable("whole", &[11, 3], init);
        let flat = g.constant(Tensor::from_vec(vec![10i64, 0, 3, 3, 7, 1]));
        let square = g.constant(Tensor::new(&[2, 2], vec![5i32, 5, 2, 9]).unwrap());
        let mut sess = Session::new(&g);
        sess.init_variables().unwrap();
        let fetches = [
            table.lookup(flat),
            gather(reference, flat),
            table.lookup(square),
            gather(reference, square),
        ];
        let out = sess.run(&fetches, &[]).unwrap();
        assert_eq!(out[0], out[1], "{strategy:?}");
        assert_eq!(out[2].shape(), &[2, 2, 3]);
        assert_eq!(out[2], out[3], "{strategy:?}");
        // The shards put back together are the table.
        assert_eq!(table_in(&sess, &table), whole);
    }
}

#[test]
fn a_partitioned_table_trains_to_the_whole_tables_weights() {
    let whole = table_value(9, 2);
    let batches = [vec![0i64, 8, 4, 4], vec![3, 5, 8], vec![1, 2, 0, 7, 6]];
    let train = |partitioned: bool| {
        let g = Graph::new();
        let init = Initializer::Constant(whole.clone());
        let ids = g.placeholder("ids", DType::I64, &[-1]);
        let split = Partitioner::fixed(2, PartitionStrategy::Div);
        let (rows, table) = if partitioned {
            let t = PartitionedVariable::new(&g, "emb", &[9, 2], init, &split).unwrap();
            (t.lookup(ids), Some(t))
        } else {
            let t = g.variable("emb", &[9, 2], init);
            (embedding_lookup(t, ids), None)
        };
        let loss = reduce_sum(square(rows - 1.0));
        let train = Adagrad::new(0.2).minimize(loss).unwrap();
        let mut sess = Session::new(&g);
        sess.init_variables().unwrap();
        for batch in &batches {
            sess.run(&[train], &[(ids, Tensor::from_vec(batch.clone()))])
                .unwrap();
        }
        match table {
            Some(t) => table_in(&sess, &t),
            None => sess.variable(g.get("emb").unwrap()).unwrap(),
        }
    };
    assert_eq!(train(true), train(false));
}

#[test]
fn bad_ids_and_bad_splits_are_named() {
    let g = Graph::new();
    let split = Partitioner::fixed(2, PartitionStrategy::Mod);
    let table = PartitionedVariable::new(&g, "emb", &[5, 2], Initializer::Ones, &split).unwrap();
    let ids = g.constant(Tensor::from_vec(vec![1i64, 5]));
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    let e = sess.run(&[table.lookup(ids)], &[]).unwrap_err().to_string();
    assert!(e.contains("index 5") && e.contains("out of range"), "{e}");
    // As few shards as keep each under the byte limit, never more than the rows.
    let by_bytes = Partitioner {
        shards: ShardCount::MaxShardBytes(500),
        ..split.clone()
    };
    let t = PartitionedVariable::new(&g, "big", &[100, 4], Initializer::Zeros, &by_bytes).unwrap();
    assert_eq!(t.shards.len(), 4);
    let tiny = Partitioner {
        shards: ShardCount::MaxShardBytes(1),
        ..split
    };
    let t = PartitionedVariable::new(&g, "tiny", &[3, 4], Initializer::Zeros, &tiny).unwrap();
    assert_eq!(t.shards.len(), 3);
    let e = PartitionedVariable::new(&g, "scalar", &[], Initializer::Zeros, &tiny).unwrap_err();
    assert!(e.to_string().contains("rank 1 or more"), "{e}");
    let wrong = Initializer::Constant(table_value(2, 4));
    let e = PartitionedVariable::new(&g, "wrong", &[4, 2], wrong, &tiny).unwrap_err();
    assert!(
        e.to_string().contains("the initial value has shape [2, 4]"),
        "{e}"
    );
}

/// A table trained in two `mod` shards, checkpointed, and restored into three `div` shards
/// (its Adagrad slots too): the same table, and the next step gives the same weights.
#[test]
fn checkpoints_keep_tables_whole_and_restore_them_into_other_splits() {
    let whole = table_value(10, 2);
    let build = |split: Partitioner| {
        let g = Graph::new();
        let init = Initializer::Constant(whole.clone());
        let table = PartitionedVariable::new(&g, "emb", &[10, 2], init, &split).unwrap();
        let ids = g.placeholder("ids", DType::I64, &[-1]);
        let loss = reduce_sum(square(table.lookup(ids) - 2.0));
        let train = Adagrad::new(0.3).minimize(loss).unwrap();
        (g, table, ids, train)
    };
    let batch = |ids: Vec<i64>| Tensor::from_vec(ids);
    let (g, table, ids, train) = build(Partitioner::fixed(2, PartitionStrategy::Mod));
    // A second table whose name holds the first's: its shards are its own, not scoped copies.
    let nested = {
        let _scope = g.name_scope("x");
        let split = Partitioner::fixed(2, PartitionStrategy::Div);
        PartitionedVariable::new(&g, "emb", &[4, 2], Initializer::Ones, &split).unwrap()
    };
    assert_eq!(nested.name, "x/emb");
    let mut sess = Session::new(&g);
    sess.init_variables().unwrap();
    for b in [vec![1i64, 9, 4], vec![4, 4, 0, 7]] {
        sess.run(&[train], &[(ids, batch(b))]).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let saved = sluice::checkpoint::save(&sess, &g, dir.path(), 2, 0).unwrap();

    let (g3, table3, ids3, train3) = build(Partitioner::fixed(3, PartitionStrategy::Div));
    let mut sess3 = Session::new(&g3);
    sess3.init_variables().unwrap();
    let back = sluice::checkpoint::restore(&mut sess3, &g3, &saved.path).unwrap();
    // The nested table was kept whole under its own name (this graph has no such table).
    assert!(back.missing.is_empty(), "{back:?}");
    assert_eq!(back.unknown, ["x/emb"], "{back:?}");
    assert_eq!(table_in(&sess3, &table3), table_in(&sess, &table));
    let next = vec![9i64, 9, 2, 4];
    sess.run(&[train], &[(ids, batch(next.clone()))]).unwrap();
    sess3.run(&[train3], &[(ids3, batch(next))]).unwrap();
    assert_eq!(table_in(&sess3, &table3), table_in(&sess, &table));
}
