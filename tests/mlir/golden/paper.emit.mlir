module {
  func.func @"paper-worked-example"(%arg0: !loom.text) -> !loom.text attributes {loom.sla_ms = 1.200000e+02 : f64, loom.workflow = "paper-worked-example"} {
    %0 = "loom.llm.generate"(%arg0) {budget_ms = 1.100000e+02 : f64, decode = "answer.decode", model = "llama8b", pred_cost = 0.089999999999999996 : f64, pred_ms = 1.100000e+02 : f64, prefill = "answer.prefill", step = "answer", target = ""} : (!loom.text) -> !loom.text
    return %0 : !loom.text
  }
}
