"""Operators the official op packs provide, for "pip install X" hints.

Only names: used when an unknown operator is requested so the error can
say which pack would bring it. The registry, not this list, is the truth
about what is installed.
"""

_PACKS = {
    "c2ops-cpu": """
        Add Sub Mul Div Pow Max Min Mean WeightedSum Scale Negative Abs Sqr Sqrt Exp Log
        Sin Cos Sign Floor Ceil Clip Mod Not And Or Xor LT LE GT GE EQ Where ReplaceNaN
        Relu LeakyRelu PRelu Elu Selu Sigmoid Tanh Softplus Softsign Swish ThresholdedRelu Logit
        FC FCTransposed MatMul BatchMatMul DotProduct CosineSimilarity SquaredL2Distance L1Distance
        Conv Conv1D Conv2D Conv3D ConvTranspose Im2Col Col2Im MaxPool AveragePool MaxPool1D MaxPool2D
        MaxPool3D AveragePool1D AveragePool2D AveragePool3D MaxPoolWithIndex LpPool LRN SpatialBN
        LayerNorm InstanceNorm GroupNorm Dropout ChannelShuffle PadImage ResizeNearest NCHW2NHWC NHWC2NCHW
        Softmax SoftmaxWithLoss LabelCrossEntropy CrossEntropy SigmoidCrossEntropyWithLogits
        WeightedSigmoidCrossEntropyWithLogits MakeTwoClass AveragedLoss Accuracy
        MarginRankingCriterion CosineEmbeddingCriterion
        Reshape Flatten FlattenToVec Transpose Squeeze ExpandDims Concat Split DepthConcat DepthSplit
        Slice Tile Cast Copy Alias Shape Size ResizeLike PrependDim MergeDim EnsureDense ArgMax ArgMin
        TopK ReduceSum ReduceMean ReduceMax ReduceMin ReduceFrontSum ReduceFrontMean ReduceFrontMax
        ReduceBackSum ReduceBackMean ReduceBackMax SumElements SumSqrElements RowwiseMax ColwiseMax
        StopGradient ConstantFill GaussianFill UniformFill UniformIntFill XavierFill MSRAFill RangeFill
        DiagonalFill GivenTensorFill GivenTensorIntFill GivenTensorInt64Fill GivenTensorDoubleFill
        GivenTensorBoolFill GivenTensorStringFill Iter AtomicIter LearningRate MomentumSGD
        MomentumSGDUpdate Adagrad Adam RmsProp Ftrl ClipTensorByScaling Print NanCheck
        CreateDB TensorProtosDBInput
    """,
    "c2ops-sparse": """
        SparseLengthsSum SparseLengthsWeightedSum SparseLengthsMean SparseLengthsPositionalWeightedSum
        FloatToFused8BitRowwiseQuantized Fused8BitRowwiseQuantizedToFloat
        SparseLengthsSumFused8BitRowwise SparseLengthsWeightedSumFused8BitRowwise
        SparseLengthsMeanFused8BitRowwise LengthsSum LengthsMean LengthsMax LengthsWeightedSum
        SortedSegmentSum SortedSegmentMean SortedSegmentMax UnsortedSegmentSum UnsortedSegmentMean
        LengthsToSegmentIds SegmentIdsToLengths LengthsToRanges LengthsToWeights LengthsTile
        LengthsGather LengthsRangeFill LengthsPartition Partition Gather BatchGather GatherRanges
        GatherRangesToDense ScatterAssign ScatterWeightedSum SparseToDense SparseToDenseMask
        BatchSparseToDense BatchDenseToSparse OneHot BatchOneHot SegmentOneHot Unique PackSegments
        UnpackSegments AddPadding RemovePadding BooleanMask BooleanUnmask SparseNormalize
        SparseAdagrad RowWiseSparseAdagrad SparseAdam SparseMomentumSGDUpdate SparseFtrl
    """,
    "c2ops-mpi": """
        CreateCommonWorld CloneCommonWorld DestroyCommonWorld Broadcast Allreduce Reduce
        Allgather ReduceScatter Barrier
    """,
    "c2ops-cuda": "CopyCPUToGPU CopyGPUToCPU CopyFromCPUInput EnsureCPUOutput",
}

KNOWN_OPS = {op: pack for pack, names in _PACKS.items() for op in names.split()}


def pack_providing(op_type: str):
    """The official pack that provides `op_type` (or its gradient), if any."""
    base = op_type[: -len("Gradient")] if op_type.endswith("Gradient") else op_type
    return KNOWN_OPS.get(op_type) or KNOWN_OPS.get(base)
