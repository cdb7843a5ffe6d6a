module {
  func.func @"react-agent@MI300X"(%arg0: !loom.text) attributes {loom.device = "MI300X", loom.sla_ms = 2.000000e+04 : f64, loom.workflow = "react-agent"} {
    "loom.loop"(%arg0) ({
    ^bb0(%arg1: !loom.text):
      %0 = "loom.llm.generate"(%arg1) {budget_ms = 15754.258 : f64, decode = "react.think.decode", model = "qwen7b", pred_cost = 3.767100e-05 : f64, pred_ms = 3.121410e+02 : f64, prefill = "react.think.prefill", step = "think", target = "MI300X"} : (!loom.text) -> !loom.text
      "loom.send"(%0) {channel = "react-agent:think/llm.generate->T4", target = "MI300X", to = "T4"} : (!loom.text) -> ()
      gpu.yield
    }) {max_iterations = 6 : i64, node = "react", step = "react", target = "MI300X", until = "${steps.think.output.action} == \22finish\22"} : (!loom.text) -> ()
    return
  }
  func.func @"react-agent@T4"(%arg0: !loom.text) -> (!loom.text, !loom.text) attributes {loom.device = "T4", loom.sla_ms = 2.000000e+04 : f64, loom.workflow = "react-agent"} {
    %0 = "loom.loop"() ({
    ^bb0(%arg1: !loom.text):
      %2 = "loom.recv"() {channel = "react-agent:think/llm.generate->T4", from = "MI300X", target = "T4"} : () -> !loom.text
      %3 = "loom.when"() ({
        %4 = "loom.tool"(%2) {budget_ms = 6.056610e+03 : f64, kind = "exec", node = "react.act", pred_cost = 2.740000e-07 : f64, pred_ms = 1.200000e+02 : f64, step = "act", target = "T4"} : (!loom.text) -> !loom.text
        gpu.yield %4 : !loom.text
      }) {cond = "${steps.think.output.action} != \22finish\22", node = "react.act", step = "act", target = "T4"} : () -> !loom.text
      gpu.yield %3 : !loom.text
    }) {max_iterations = 6 : i64, node = "react", step = "react", target = "T4", until = "${steps.think.output.action} == \22finish\22"} : () -> !loom.text
    %1 = "loom.tool"(%0) {budget_ms = 5.047000e+00 : f64, kind = "noop", node = "report", pred_cost = 0.000000e+00 : f64, pred_ms = 1.000000e-01 : f64, step = "report", target = "T4"} : (!loom.text) -> !loom.text
    return %0, %1 : !loom.text, !loom.text
  }
}
