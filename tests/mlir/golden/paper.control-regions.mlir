module {
  func.func @"paper-worked-example@HP"(%arg0: !loom.text) attributes {loom.device = "HP", loom.sla_ms = 1.200000e+02 : f64, loom.workflow = "paper-worked-example"} {
    %0 = "loom.llm.prefill"(%arg0) {budget_ms = 8.000000e+01 : f64, model = "llama8b", node = "answer.prefill", pred_cost = 8.000000e-02 : f64, pred_ms = 8.000000e+01 : f64, step = "answer", target = "HP"} : (!loom.text) -> !loom.kv
    %1 = "loom.kv.transfer"(%0) {budget_ms = 1.000000e+01 : f64, node = "answer.prefill", pred_cost = 5.000000e-03 : f64, pred_ms = 1.000000e+01 : f64, step = "answer", target = "HP", to = "CO"} : (!loom.kv) -> !loom.kv
    "loom.send"(%1) {channel = "paper-worked-example:answer/kv.transfer->CO", target = "HP", to = "CO"} : (!loom.kv) -> ()
    return
  }
  func.func @"paper-worked-example@CO"(%arg0: !loom.text) -> !loom.text attributes {loom.device = "CO", loom.sla_ms = 1.200000e+02 : f64, loom.workflow = "paper-worked-example"} {
    %0 = "loom.recv"() {channel = "paper-worked-example:answer/kv.transfer->CO", from = "HP", target = "CO"} : () -> !loom.kv
    %1 = "loom.llm.decode"(%0) {budget_ms = 3.000000e+01 : f64, model = "llama8b", node = "answer.decode", pred_cost = 1.000000e-02 : f64, pred_ms = 3.000000e+01 : f64, step = "answer", target = "CO"} : (!loom.kv) -> !loom.text
    return %1 : !loom.text
  }
}
