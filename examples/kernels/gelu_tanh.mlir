// GELU, tanh approximation (as in GPT-2 / BERT):
//   y = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
// on 256 floats. math.tanh lowers to a libm call on the CPU and NPU targets.
// Try it: loom kernel examples/kernels/gelu_tanh.mlir --run ARGS.json
//         (ARGS.json: {"arg0": [256 floats]}; the result is arg1)
func.func @gelu(%x: memref<256xf32>, %y: memref<256xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>],
                  iterator_types = ["parallel"]}
      ins(%x : memref<256xf32>) outs(%y : memref<256xf32>) {
    ^bb0(%v: f32, %o: f32):
      %c = arith.constant 0.7978845608 : f32
      %a = arith.constant 0.044715 : f32
      %half = arith.constant 0.5 : f32
      %one = arith.constant 1.0 : f32
      %v2 = arith.mulf %v, %v : f32
      %v3 = arith.mulf %v2, %v : f32
      %t0 = arith.mulf %v3, %a : f32
      %t1 = arith.addf %v, %t0 : f32
      %t2 = arith.mulf %t1, %c : f32
      %th = math.tanh %t2 : f32
      %t3 = arith.addf %th, %one : f32
      %t4 = arith.mulf %t3, %half : f32
      %r = arith.mulf %t4, %v : f32
      linalg.yield %r : f32
  }
  return
}
