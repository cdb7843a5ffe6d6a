module {
  func.func @"support-rag"(%arg0: !loom.text) -> (!loom.text, !loom.text, !loom.text) attributes {loom.sla_ms = 2.500000e+03 : f64, loom.workflow = "support-rag"} {
    %0 = "loom.embed"(%arg0) {budget_ms = 7.490000e-01 : f64, model = "minilm", node = "embed_question", pred_cost = 6.0000000000000008E-9 : f64, pred_ms = 6.800000e-02 : f64, step = "embed_question", target = ""} : (!loom.text) -> !loom.text
    %1 = "loom.tool"(%arg0) {budget_ms = 1096.779 : f64, kind = "exec", node = "lookup_ticket", pred_cost = 2.280000e-07 : f64, pred_ms = 1.000000e+02 : f64, step = "lookup_ticket", target = ""} : (!loom.text) -> !loom.text
    %2 = "loom.llm.generate"(%arg0) {budget_ms = 13.129000000000001 : f64, decode = "classify.decode", model = "qwen", pred_cost = 3.430000e-07 : f64, pred_ms = 1.197000e+00 : f64, prefill = "classify.prefill", step = "classify", target = ""} : (!loom.text) -> !loom.text
    %3 = "loom.vector.search"(%0) {budget_ms = 5.070000e-01 : f64, index = "kb", k = 0 : i64, node = "retrieve", pred_cost = 3.200000e-08 : f64, pred_ms = 4.600000e-02 : f64, step = "retrieve", target = ""} : (!loom.text) -> !loom.text
    %4 = "loom.tool"(%2, %1) {budget_ms = 2193.5590000000002 : f64, kind = "http", node = "escalate", pred_cost = 4.5700000000000003E-7 : f64, pred_ms = 2.000000e+02 : f64, step = "escalate", target = ""} : (!loom.text, !loom.text) -> !loom.text
    %5 = "loom.llm.generate"(%4, %1, %3, %2) {budget_ms = 1183.8310000000001 : f64, decode = "answer.decode", model = "qwen", pred_cost = 1.106600e-05 : f64, pred_ms = 1.079370e+02 : f64, prefill = "answer.prefill", step = "answer", target = ""} : (!loom.text, !loom.text, !loom.text, !loom.text) -> !loom.text
    return %2, %3, %5 : !loom.text, !loom.text, !loom.text
  }
}
