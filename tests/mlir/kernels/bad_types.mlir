// A user kernel that does not verify: line 6 multiplies an index by a
// float. `loom kernel` must report bad_types.mlir:6:19 with MLIR's message.
func.func @bad(%x: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %f = memref.load %x[%c0] : memref<8xf32>
  %y = arith.mulf %c0, %f : f32
  return
}
