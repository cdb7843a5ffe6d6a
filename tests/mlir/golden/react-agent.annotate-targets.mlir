module {
  func.func @"react-agent"(%arg0: !loom.text) -> (!loom.text, !loom.text) attributes {loom.sla_ms = 2.000000e+04 : f64, loom.workflow = "react-agent"} {
    %0 = "loom.tool"(%arg0) {budget_ms = 0.000000e+00 : f64, kind = "noop", node = "react.begin", pred_cost = 0.000000e+00 : f64, pred_ms = 0.000000e+00 : f64, step = "react", target = "MI300X"} : (!loom.text) -> !loom.text
    %1 = "loom.llm.generate"(%0) {budget_ms = 15754.258 : f64, decode = "react.think.decode", model = "qwen7b", pred_cost = 3.767100e-05 : f64, pred_ms = 3.121410e+02 : f64, prefill = "react.think.prefill", step = "think", target = "MI300X"} : (!loom.text) -> !loom.text
    %2 = "loom.tool"(%1) {budget_ms = 6.056610e+03 : f64, kind = "exec", node = "react.act", pred_cost = 2.740000e-07 : f64, pred_ms = 1.200000e+02 : f64, step = "act", target = "T4"} : (!loom.text) -> !loom.text
    %3 = "loom.tool"(%2) {budget_ms = 0.000000e+00 : f64, kind = "noop", node = "react.end", pred_cost = 0.000000e+00 : f64, pred_ms = 0.000000e+00 : f64, step = "react", target = "T4"} : (!loom.text) -> !loom.text
    %4 = "loom.tool"(%3) {budget_ms = 5.047000e+00 : f64, kind = "noop", node = "report", pred_cost = 0.000000e+00 : f64, pred_ms = 1.000000e-01 : f64, step = "report", target = "T4"} : (!loom.text) -> !loom.text
    return %3, %4 : !loom.text, !loom.text
  }
}
