// A user compute kernel: y = 2x + y on 8 floats (static shapes).
func.func @axpy(%x: memref<8xf32>, %y: memref<8xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>],
                  iterator_types = ["parallel"]}
      ins(%x : memref<8xf32>) outs(%y : memref<8xf32>) {
    ^bb0(%v: f32, %o: f32):
      %two = arith.constant 2.0 : f32
      %t = arith.mulf %v, %two : f32
      %r = arith.addf %t, %o : f32
      linalg.yield %r : f32
  }
  return
}
