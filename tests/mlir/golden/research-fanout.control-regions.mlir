module {
  func.func @"research-fanout@B200"(%arg0: !loom.text) -> (!loom.text, !loom.text, !loom.text) attributes {loom.device = "B200", loom.sla_ms = 3.000000e+04 : f64, loom.workflow = "research-fanout"} {
    %0 = "loom.llm.generate"(%arg0) {budget_ms = 3790.924 : f64, decode = "plan.decode", model = "llama8b", pred_cost = 3.765100e-05 : f64, pred_ms = 1.712530e+02 : f64, prefill = "plan.prefill", step = "plan", target = "B200"} : (!loom.text) -> !loom.text
    %1 = "loom.foreach"() ({
    ^bb0(%arg1: !loom.text):
      %5 = "loom.tool"(%arg1, %0) {budget_ms = 664.09199999999998 : f64, kind = "exec", node = "search", pred_cost = 7.800000e-07 : f64, pred_ms = 3.000000e+01 : f64, step = "search", target = "B200"} : (!loom.text, !loom.text) -> !loom.text
      gpu.yield %5 : !loom.text
    }) {node = "search", over = "${steps.plan.output.questions}", step = "search", target = "B200"} : () -> !loom.text
    %2 = "loom.foreach"() ({
    ^bb0(%arg1: !loom.text):
      %5 = "loom.llm.generate"(%arg1, %1) {budget_ms = 5021.826 : f64, decode = "answer.decode", model = "llama8b", pred_cost = 7.172300e-05 : f64, pred_ms = 2.268580e+02 : f64, prefill = "answer.prefill", step = "answer", target = "B200"} : (!loom.text, !loom.text) -> !loom.text
      gpu.yield %5 : !loom.text
    }) {node = "answer.decode", over = "${steps.search.output}", step = "answer", target = "B200"} : () -> !loom.text
    "loom.send"(%2) {channel = "research-fanout:answer/llm.generate->MI300X", target = "B200", to = "MI300X"} : (!loom.text) -> ()
    %3 = "loom.recv"() {channel = "research-fanout:weights/compute->B200", from = "MI300X", target = "B200"} : () -> !loom.text
    %4 = "loom.llm.generate"(%3, %1, %2) {budget_ms = 18308.847999999998 : f64, decode = "summarise.decode", model = "llama8b", pred_cost = 1.917740e-04 : f64, pred_ms = 827.0920000000001 : f64, prefill = "summarise.prefill", step = "summarise", target = "B200"} : (!loom.text, !loom.text, !loom.text) -> !loom.text
    return %0, %2, %4 : !loom.text, !loom.text, !loom.text
  }
  func.func @"research-fanout@MI300X"(%arg0: !loom.text) attributes {loom.device = "MI300X", loom.sla_ms = 3.000000e+04 : f64, loom.workflow = "research-fanout"} {
    %0 = "loom.recv"() {channel = "research-fanout:answer/llm.generate->MI300X", from = "B200", target = "MI300X"} : () -> !loom.text
    %1 = "loom.tool"(%0) {budget_ms = 2.213640e+03 : f64, kind = "exec", node = "weigh", pred_cost = 1.0810000000000001E-6 : f64, pred_ms = 1.000000e+02 : f64, step = "weigh", target = "MI300X"} : (!loom.text) -> !loom.text
    %2 = "loom.compute"(%1) {budget_ms = 4.470000e-01 : f64, kernel = "softmax", node = "weights", pred_cost = 1.4000000000000001E-8 : f64, pred_ms = 2.000000e-02 : f64, step = "weights", target = "MI300X"} : (!loom.text) -> !loom.text
    "loom.send"(%2) {channel = "research-fanout:weights/compute->B200", target = "MI300X", to = "B200"} : (!loom.text) -> ()
    return
  }
}
