// loom.irdl.mlir — the `loom` dialect in IRDL. Embedded into the binary at
// build time and loaded at start by mlir-lowering/ctx.c through
// mlirLoadIRDLDialects, so no C++ is needed to define it.
//
// Types (the values flowing between steps of a workflow):
//   !loom.text  a UTF-8 / JSON payload (prompt, tool output, answer)
//   !loom.kv    an LLM KV-cache handle (made by prefill, read by decode)
// Embeddings and search hits travel as !loom.text (JSON) like every other
// step output: IRDL unifies the types of a variadic operand group, so one
// data type keeps steps composable whatever their inputs.
// Attributes on every step op (IRDL unifies a constraint value used twice,
// so each attribute has its own constraint):
//   step       string  workflow step id the op comes from
//   target     string  device id chosen by the plan ("" until annotate-targets)
//   budget_ms  float   this op's share of the end-to-end SLA budget
//   pred_ms    float   predicted latency on the target
//   pred_cost  float   predicted cost on the target, USD
irdl.dialect @loom {
  irdl.type @text
  irdl.type @kv

  // A whole LLM call; decompose-llm splits it into prefill + kv + decode.
  irdl.operation @"llm.generate" {
    %text = irdl.parametric @loom::@text<>
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %s2 = irdl.base "#builtin.string"
    %f0 = irdl.base "#builtin.float"
    %f1 = irdl.base "#builtin.float"
    %f2 = irdl.base "#builtin.float"
    irdl.operands(variadic %text)
    irdl.results(%text)
    irdl.attributes {"step" = %s0, "model" = %s1, "target" = %s2,
                     "budget_ms" = %f0, "pred_ms" = %f1, "pred_cost" = %f2}
  }

  // Prompt processing: builds the KV cache.
  irdl.operation @"llm.prefill" {
    %text = irdl.parametric @loom::@text<>
    %kv = irdl.parametric @loom::@kv<>
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %s2 = irdl.base "#builtin.string"
    %f0 = irdl.base "#builtin.float"
    %f1 = irdl.base "#builtin.float"
    %f2 = irdl.base "#builtin.float"
    irdl.operands(variadic %text)
    irdl.results(%kv)
    irdl.attributes {"step" = %s0, "model" = %s1, "target" = %s2,
                     "budget_ms" = %f0, "pred_ms" = %f1, "pred_cost" = %f2}
  }

  // Token generation from a KV cache.
  irdl.operation @"llm.decode" {
    %kv = irdl.parametric @loom::@kv<>
    %text = irdl.parametric @loom::@text<>
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %s2 = irdl.base "#builtin.string"
    %f0 = irdl.base "#builtin.float"
    %f1 = irdl.base "#builtin.float"
    %f2 = irdl.base "#builtin.float"
    irdl.operands(%kv)
    irdl.results(%text)
    irdl.attributes {"step" = %s0, "model" = %s1, "target" = %s2,
                     "budget_ms" = %f0, "pred_ms" = %f1, "pred_cost" = %f2}
  }

  // Ships a KV cache from the prefill device (target) to the decode device (to).
  irdl.operation @"kv.transfer" {
    %kv = irdl.parametric @loom::@kv<>
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %s2 = irdl.base "#builtin.string"
    %f0 = irdl.base "#builtin.float"
    %f1 = irdl.base "#builtin.float"
    %f2 = irdl.base "#builtin.float"
    irdl.operands(%kv)
    irdl.results(%kv)
    irdl.attributes {"step" = %s0, "to" = %s1, "target" = %s2,
                     "budget_ms" = %f0, "pred_ms" = %f1, "pred_cost" = %f2}
  }

  irdl.operation @embed {
    %text = irdl.parametric @loom::@text<>
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %s2 = irdl.base "#builtin.string"
    %f0 = irdl.base "#builtin.float"
    %f1 = irdl.base "#builtin.float"
    %f2 = irdl.base "#builtin.float"
    irdl.operands(variadic %text)
    irdl.results(%text)
    irdl.attributes {"step" = %s0, "model" = %s1, "target" = %s2,
                     "budget_ms" = %f0, "pred_ms" = %f1, "pred_cost" = %f2}
  }

  // Scoring + top-k against a named index; result is a JSON list of hits.
  irdl.operation @"vector.search" {
    %text = irdl.parametric @loom::@text<>
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %s2 = irdl.base "#builtin.string"
    %k = irdl.base "#builtin.integer"
    %f0 = irdl.base "#builtin.float"
    %f1 = irdl.base "#builtin.float"
    %f2 = irdl.base "#builtin.float"
    irdl.operands(variadic %text)
    irdl.results(%text)
    irdl.attributes {"step" = %s0, "index" = %s1, "target" = %s2, "k" = %k,
                     "budget_ms" = %f0, "pred_ms" = %f1, "pred_cost" = %f2}
  }

  // tool.exec / tool.http (kind = "exec" | "http").
  irdl.operation @tool {
    %text = irdl.parametric @loom::@text<>
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %s2 = irdl.base "#builtin.string"
    %f0 = irdl.base "#builtin.float"
    %f1 = irdl.base "#builtin.float"
    %f2 = irdl.base "#builtin.float"
    irdl.operands(variadic %text)
    irdl.results(%text)
    irdl.attributes {"step" = %s0, "kind" = %s1, "target" = %s2,
                     "budget_ms" = %f0, "pred_ms" = %f1, "pred_cost" = %f2}
  }

  // A compute kernel (built-in name or user .mlir file) compiled per target.
  irdl.operation @compute {
    %text = irdl.parametric @loom::@text<>
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %s2 = irdl.base "#builtin.string"
    %f0 = irdl.base "#builtin.float"
    %f1 = irdl.base "#builtin.float"
    %f2 = irdl.base "#builtin.float"
    irdl.operands(variadic %text)
    irdl.results(%text)
    irdl.attributes {"step" = %s0, "kernel" = %s1, "target" = %s2,
                     "budget_ms" = %f0, "pred_ms" = %f1, "pred_cost" = %f2}
  }

  // Dynamic control, made by control-regions in each device function.
  // IRDL cannot declare a terminator, so each region ends with gpu.yield
  // (MLIR's terminator that takes any values and no parent constraint).
  //
  // A bounded loop: the body runs until `until` holds or max_iterations;
  // the region's argument is the loop's input, it yields the iteration's
  // outputs (on the device whose function gathers them: the result).
  irdl.operation @loop {
    %text = irdl.parametric @loom::@text<>
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %i = irdl.base "#builtin.integer"
    %body = irdl.region
    irdl.operands(variadic %text)
    irdl.results(variadic %text)
    irdl.attributes {"step" = %s0, "target" = %s1, "max_iterations" = %i}
    irdl.regions(%body)
  }

  // A step run once per item of the list `over`: the region's argument is
  // the item; the result gathers the yields in item order.
  irdl.operation @foreach {
    %text = irdl.parametric @loom::@text<>
    %kv = irdl.parametric @loom::@kv<>
    %any = irdl.any_of(%text, %kv)
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %s2 = irdl.base "#builtin.string"
    %body = irdl.region
    irdl.operands()
    irdl.results(%any)
    irdl.attributes {"step" = %s0, "target" = %s1, "over" = %s2}
    irdl.regions(%body)
  }

  // A step guarded by `cond`: the region runs only when it holds (the
  // result is null otherwise).
  irdl.operation @when {
    %text = irdl.parametric @loom::@text<>
    %kv = irdl.parametric @loom::@kv<>
    %any = irdl.any_of(%text, %kv)
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %s2 = irdl.base "#builtin.string"
    %body = irdl.region
    irdl.operands()
    irdl.results(%any)
    irdl.attributes {"step" = %s0, "target" = %s1, "cond" = %s2}
    irdl.regions(%body)
  }

  // Cross-device edge, inserted by partition-devices: the producer's
  // function sends on `channel` to device `to`; the consumer's receives.
  irdl.operation @send {
    %text = irdl.parametric @loom::@text<>
    %kv = irdl.parametric @loom::@kv<>
    %any = irdl.any_of(%text, %kv)
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %s2 = irdl.base "#builtin.string"
    irdl.operands(%any)
    irdl.results()
    irdl.attributes {"channel" = %s0, "to" = %s1, "target" = %s2}
  }
  irdl.operation @recv {
    %text = irdl.parametric @loom::@text<>
    %kv = irdl.parametric @loom::@kv<>
    %any = irdl.any_of(%text, %kv)
    %s0 = irdl.base "#builtin.string"
    %s1 = irdl.base "#builtin.string"
    %s2 = irdl.base "#builtin.string"
    irdl.operands()
    irdl.results(%any)
    irdl.attributes {"channel" = %s0, "from" = %s1, "target" = %s2}
  }
}
