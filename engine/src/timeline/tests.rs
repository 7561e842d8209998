use super::*;

fn timing(node: &str, op: &'static str, device: &str, start: f64, micros: f64) -> NodeTiming {
    NodeTiming {
        node: node.into(),
        op,
        family: Some(OpFamily::Linalg),
        start_micros: start,
        micros,
        device: device.into(),
        estimate_micros: Some(micros * 2.0),
        transfer: None,
    }
}

/// Two workers: task 0 computes and sends, task 1 receives and computes.
fn two_tasks() -> Vec<NodeTiming> {
    let (w0, w1) = (
        "/job:worker/task:0/device:CPU:0",
        "/job:worker/task:1/device:CPU:0",
    );
    let mut send = timing("_send/h/to_worker_1", "_Send", w0, 40.0, 5.0);
    send.family = Some(OpFamily::Transfer);
    let mut recv = timing("_recv/h/from_worker_0", "_Recv", w1, 10.0, 60.0);
    recv.family = Some(OpFamily::Transfer);
    recv.transfer = Some(TransferTiming {
        tensor: "h:0".into(),
        from_task: "/job:worker/task:0".into(),
        sender: "_send/h/to_worker_1".into(),
        wait_micros: 40.0,
        transfer_micros: 15.0,
        wire_bytes: 4096,
        bulk: false,
    });
    vec![
        timing("layer2/MatMul", "MatMul", w1, 75.0, 20.0),
        timing("layer1/MatMul", "MatMul", w0, 0.0, 30.0),
        send,
        recv,
    ]
}

#[test]
fn lanes_follow_tasks_and_a_receive_flows_from_its_send() {
    let timeline = StepTimeline::from_timings(&two_tasks());
    let lanes: Vec<_> = (timeline.lanes.iter())
        .map(|l| format!("{}|{}", l.process, l.device))
        .collect();
    assert_eq!(
        lanes,
        ["/job:worker/task:0|CPU:0", "/job:worker/task:1|CPU:0"]
    );
    assert_eq!(timeline.spans[1].lane, 0);
    assert_eq!(timeline.spans[0].lane, 1);
    assert_eq!(timeline.flows.len(), 1);
    let flow = &timeline.flows[0];
    assert_eq!(timeline.spans[flow.from].node, "_send/h/to_worker_1");
    assert_eq!(timeline.spans[flow.to].node, "_recv/h/from_worker_0");
    assert_eq!((flow.tensor.as_str(), flow.wire_bytes), ("h:0", 4096));
}

#[test]
fn odd_times_from_a_peer_are_drawn_as_nothing_not_a_panic() {
    let mut recv = two_tasks().remove(3);
    recv.micros = f64::NAN;
    recv.start_micros = -5.0;
    if let Some(t) = &mut recv.transfer {
        t.wait_micros = f64::INFINITY;
    }
    let timeline = StepTimeline::from_timings(&[recv]);
    let span = &timeline.spans[0];
    assert_eq!((span.start_micros, span.micros), (0.0, 0.0));
    let text = serde_json::to_string(&timeline.chrome_trace()).expect("json");
    assert!(!text.contains("null"), "{text}");
    let back: Value = serde_json::from_str(&text).expect("parse");
    assert!(StepTimeline::from_chrome_trace(&back).is_ok());
}

#[test]
fn lanes_order_tasks_and_devices_by_number() {
    let at = |device: &str| timing("n", "MatMul", device, 0.0, 1.0);
    let timeline = StepTimeline::from_timings(&[
        at("/job:worker/task:10/device:CPU:0"),
        at("/job:worker/task:2/device:GPU:10"),
        at("/job:worker/task:2/device:GPU:2"),
    ]);
    let lanes: Vec<_> = (timeline.lanes.iter())
        .map(|l| format!("{}|{}", l.process, l.device))
        .collect();
    assert_eq!(
        lanes,
        [
            "/job:worker/task:2|GPU:2",
            "/job:worker/task:2|GPU:10",
            "/job:worker/task:10|CPU:0"
        ]
    );
    assert_eq!(timeline.spans[0].lane, 2);
}

#[test]
fn a_local_device_is_a_lane_of_this_process() {
    assert_eq!(
        Lane::of_device("/device:GPU:1"),
        Lane {
            process: String::new(),
            device: "GPU:1".into()
        }
    );
}

#[test]
fn the_chrome_trace_names_processes_and_threads_and_reads_back_the_same() {
    let timeline = StepTimeline::from_timings(&two_tasks());
    let trace = timeline.chrome_trace();
    let events = trace["traceEvents"].as_array().expect("events");
    let named = |what: &str| -> Vec<String> {
        (events.iter())
            .filter(|e| e["ph"] == "M" && e["name"] == what)
            .map(|e| e["args"]["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        named("process_name"),
        ["/job:worker/task:0", "/job:worker/task:1"]
    );
    assert_eq!(named("thread_name"), ["CPU:0", "CPU:0"]);
    let parts: Vec<_> = (events.iter())
        .filter(|e| e["cat"] == "transfer.part")
        .map(|e| (e["name"].as_str().unwrap_or_default(), e["dur"].as_f64()))
        .collect();
    assert_eq!(parts, [("wait", Some(40.0)), ("transfer", Some(15.0))]);
    let flow: Vec<_> = (events.iter())
        .filter(|e| e["ph"] == "s" || e["ph"] == "f")
        .map(|e| (e["pid"].as_u64(), e["id"].as_u64()))
        .collect();
    assert_eq!(flow, [(Some(0), Some(0)), (Some(1), Some(0))]);
    let text = serde_json::to_string(&trace).expect("json");
    let back: Value = serde_json::from_str(&text).expect("parse");
    assert_eq!(
        StepTimeline::from_chrome_trace(&back).expect("read"),
        timeline
    );
    // A flow end without the node it binds to is bound by its time on its lane.
    let mut anonymous = back.clone();
    for event in anonymous["traceEvents"].as_array_mut().expect("events") {
        if let Some(args) = event.get_mut("args").and_then(Value::as_object_mut) {
            args.remove("node");
        }
    }
    assert_eq!(
        StepTimeline::from_chrome_trace(&anonymous).expect("read"),
        timeline
    );
}

#[test]
fn a_trace_that_is_not_ours_is_refused_by_what_is_wrong() {
    let err = StepTimeline::from_chrome_trace(&json!({"events": []})).unwrap_err();
    assert!(err.to_string().contains("traceEvents"), "{err}");
    let bad = json!({"traceEvents": [
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": 0, "args": {"name": "CPU:0"}},
        {"ph": "X", "name": "a", "pid": 0, "tid": 0, "ts": "soon", "dur": 1.0},
    ]});
    let err = StepTimeline::from_chrome_trace(&bad).unwrap_err();
    assert!(
        err.to_string().contains("event 1") && err.to_string().contains("ts"),
        "{err}"
    );
}
