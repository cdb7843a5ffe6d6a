module {
  func.func @"research-fanout"(%arg0: !loom.text) -> (!loom.text, !loom.text, !loom.text) attributes {loom.sla_ms = 3.000000e+04 : f64, loom.workflow = "research-fanout"} {
    %0 = "loom.llm.generate"(%arg0) {budget_ms = 4081.1680000000001 : f64, decode = "plan.decode", model = "llama8b", pred_cost = 3.522600e-05 : f64, pred_ms = 1.601680e+02 : f64, prefill = "plan.prefill", step = "plan", target = ""} : (!loom.text) -> !loom.text
    %1 = "loom.tool"(%0) {budget_ms = 764.41399999999999 : f64, kind = "exec", node = "search", pred_cost = 7.800000e-07 : f64, pred_ms = 3.000000e+01 : f64, step = "search", target = ""} : (!loom.text) -> !loom.text
    %2 = "loom.llm.generate"(%1) {budget_ms = 4831.6610000000001 : f64, decode = "answer.decode", model = "llama8b", pred_cost = 6.397800e-05 : f64, pred_ms = 189.62199999999999 : f64, prefill = "answer.prefill", step = "answer", target = ""} : (!loom.text) -> !loom.text
    %3 = "loom.tool"(%2) {budget_ms = 2548.0480000000002 : f64, kind = "exec", node = "weigh", pred_cost = 1.0810000000000001E-6 : f64, pred_ms = 1.000000e+02 : f64, step = "weigh", target = ""} : (!loom.text) -> !loom.text
    %4 = "loom.compute"(%3) {budget_ms = 5.150000e-01 : f64, kernel = "softmax", node = "weights", pred_cost = 1.4000000000000001E-8 : f64, pred_ms = 2.000000e-02 : f64, step = "weights", target = ""} : (!loom.text) -> !loom.text
    %5 = "loom.llm.generate"(%4, %1, %2) {budget_ms = 17773.937000000002 : f64, decode = "summarise.decode", model = "llama8b", pred_cost = 1.6483100000000002E-4 : f64, pred_ms = 6.975510e+02 : f64, prefill = "summarise.prefill", step = "summarise", target = ""} : (!loom.text, !loom.text, !loom.text) -> !loom.text
    return %0, %2, %5 : !loom.text, !loom.text, !loom.text
  }
}
