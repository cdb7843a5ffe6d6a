// Layer normalisation over the rows of a 4 x 64 matrix:
//   y = (x - mean(x)) / sqrt(var(x) + 1e-5) * w + b     (per row; w, b per column)
// Two reduction passes (mean, then the variance about it: stable for inputs
// far from zero) and one elementwise pass; row statistics live on the stack.
// Try it: loom kernel examples/kernels/layernorm.mlir --run ARGS.json
//         (ARGS.json: {"arg0": [[64 floats] x 4], "arg1": [64], "arg2": [64]}; the result is arg3)
#row = affine_map<(i, j) -> (i)>
#col = affine_map<(i, j) -> (j)>
#all = affine_map<(i, j) -> (i, j)>
func.func @layernorm(%x: memref<4x64xf32>, %w: memref<64xf32>, %b: memref<64xf32>,
                     %y: memref<4x64xf32>) {
  %zero = arith.constant 0.0 : f32
  %sum = memref.alloca() : memref<4xf32>
  %sq = memref.alloca() : memref<4xf32>
  linalg.fill ins(%zero : f32) outs(%sum : memref<4xf32>)
  linalg.fill ins(%zero : f32) outs(%sq : memref<4xf32>)
  linalg.generic {indexing_maps = [#all, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<4x64xf32>) outs(%sum : memref<4xf32>) {
    ^bb0(%v: f32, %acc: f32):
      %r = arith.addf %acc, %v : f32
      linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#all, #row, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x, %sum : memref<4x64xf32>, memref<4xf32>) outs(%sq : memref<4xf32>) {
    ^bb0(%v: f32, %s: f32, %acc: f32):
      %n = arith.constant 64.0 : f32
      %mean = arith.divf %s, %n : f32
      %d = arith.subf %v, %mean : f32
      %d2 = arith.mulf %d, %d : f32
      %r = arith.addf %acc, %d2 : f32
      linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#all, #row, #row, #col, #col, #all],
                  iterator_types = ["parallel", "parallel"]}
      ins(%x, %sum, %sq, %w, %b : memref<4x64xf32>, memref<4xf32>, memref<4xf32>, memref<64xf32>, memref<64xf32>)
      outs(%y : memref<4x64xf32>) {
    ^bb0(%v: f32, %s: f32, %q: f32, %wt: f32, %bs: f32, %o: f32):
      %n = arith.constant 64.0 : f32
      %eps = arith.constant 1.0e-5 : f32
      %mean = arith.divf %s, %n : f32
      %var = arith.divf %q, %n : f32
      %t = arith.addf %var, %eps : f32
      %inv = math.rsqrt %t : f32
      %d = arith.subf %v, %mean : f32
      %xn = arith.mulf %d, %inv : f32
      %sc = arith.mulf %xn, %wt : f32
      %r = arith.addf %sc, %bs : f32
      linalg.yield %r : f32
  }
  return
}
