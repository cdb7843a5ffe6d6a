module {
  func.func @"support-rag@MI300X"(%arg0: !loom.text) -> (!loom.text, !loom.text, !loom.text) attributes {loom.device = "MI300X", loom.sla_ms = 2.500000e+03 : f64, loom.workflow = "support-rag"} {
    %0 = "loom.embed"(%arg0) {budget_ms = 7.490000e-01 : f64, model = "minilm", node = "embed_question", pred_cost = 6.0000000000000008E-9 : f64, pred_ms = 6.800000e-02 : f64, step = "embed_question", target = "MI300X"} : (!loom.text) -> !loom.text
    %1 = "loom.recv"() {channel = "support-rag:lookup_ticket/tool->MI300X", from = "T4", target = "MI300X"} : () -> !loom.text
    %2 = "loom.llm.generate"(%arg0) {budget_ms = 13.129000000000001 : f64, decode = "classify.decode", model = "qwen", pred_cost = 3.430000e-07 : f64, pred_ms = 1.197000e+00 : f64, prefill = "classify.prefill", step = "classify", target = "MI300X"} : (!loom.text) -> !loom.text
    "loom.send"(%2) {channel = "support-rag:classify/llm.generate->T4", target = "MI300X", to = "T4"} : (!loom.text) -> ()
    %3 = "loom.vector.search"(%0) {budget_ms = 5.070000e-01 : f64, index = "kb", k = 0 : i64, node = "retrieve", pred_cost = 3.200000e-08 : f64, pred_ms = 4.600000e-02 : f64, step = "retrieve", target = "MI300X"} : (!loom.text) -> !loom.text
    %4 = "loom.recv"() {channel = "support-rag:escalate/tool->MI300X", from = "T4", target = "MI300X"} : () -> !loom.text
    %5 = "loom.llm.generate"(%4, %1, %3, %2) {budget_ms = 1183.8310000000001 : f64, decode = "answer.decode", model = "qwen", pred_cost = 1.106600e-05 : f64, pred_ms = 1.079370e+02 : f64, prefill = "answer.prefill", step = "answer", target = "MI300X"} : (!loom.text, !loom.text, !loom.text, !loom.text) -> !loom.text
    return %2, %3, %5 : !loom.text, !loom.text, !loom.text
  }
  func.func @"support-rag@T4"(%arg0: !loom.text) attributes {loom.device = "T4", loom.sla_ms = 2.500000e+03 : f64, loom.workflow = "support-rag"} {
    %0 = "loom.tool"(%arg0) {budget_ms = 1096.779 : f64, kind = "exec", node = "lookup_ticket", pred_cost = 2.280000e-07 : f64, pred_ms = 1.000000e+02 : f64, step = "lookup_ticket", target = "T4"} : (!loom.text) -> !loom.text
    "loom.send"(%0) {channel = "support-rag:lookup_ticket/tool->MI300X", target = "T4", to = "MI300X"} : (!loom.text) -> ()
    %1 = "loom.recv"() {channel = "support-rag:classify/llm.generate->T4", from = "MI300X", target = "T4"} : () -> !loom.text
    %2 = "loom.when"() ({
      %3 = "loom.tool"(%1, %0) {budget_ms = 2193.5590000000002 : f64, kind = "http", node = "escalate", pred_cost = 4.5700000000000003E-7 : f64, pred_ms = 2.000000e+02 : f64, step = "escalate", target = "T4"} : (!loom.text, !loom.text) -> !loom.text
      gpu.yield %3 : !loom.text
    }) {cond = "${steps.classify.output} contains \22bug\22 && ${steps.lookup_ticket.output.priority} == \22high\22", node = "escalate", step = "escalate", target = "T4"} : () -> !loom.text
    "loom.send"(%2) {channel = "support-rag:escalate/tool->MI300X", target = "T4", to = "MI300X"} : (!loom.text) -> ()
    return
  }
}
