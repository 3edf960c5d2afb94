"""The functions ad-hoc SQL may call: an allowlist of data functions (issue 8, defect 7).

Anything not listed here is refused, so a function a later ClickHouse release adds is refused
until someone reads what it does and adds it. The list was drawn from ``system.functions`` of
ClickHouse 26.9 (chDB 4.4) by category, keeping only functions that compute on the values a query
passes them:

- kept: aggregates (and window functions), arithmetic, comparison, logical, conditional, string,
  string search/replace/split, date and time, type conversion, arrays, maps, tuples, JSON, URL,
  IP address, UUID, encoding, hashing, rounding, maths, bits, NULL handling, random numbers, and
  their SQL-compatible aliases (``DATE_TRUNC``, ``median``, ``substr`` …);
- plus a few from "Other" that are data functions too: ``toTypeName``, ``formatReadable*``,
  ``throwIf``, ``transform``, ``materialize``, ``identity``, ``ignore``, ``bar``, ``byteSize``,
  ``finalizeAggregation``/``initializeAggregation``, and ``sleep``/``sleepEachRow`` (at most 3 s per
  block and bounded by ``max_execution_time``; the per-org ad-hoc concurrency cap bounds how many
  connections they can hold);
- left out: server and environment introspection (``version``, ``hostName``, ``FQDN``,
  ``currentUser``, ``currentDatabase``, ``getSetting``, ``getServerSetting``, ``getMacro``,
  ``uptime``, ``buildId``, ``serverUUID``, ``timezone``/``serverTimezone``, ``tcpPort``,
  ``queryID``, ``shardNum``, ``chdb`` …), block and part structure (``blockNumber``,
  ``blockSize``, ``rowNumberInBlock``, ``neighbor``, ``runningDifference`` …, which describe how
  the engine stored and read shared parts), the function forms of ``IN`` (they take a table name),
  dictionaries, ``joinGet``, files, models and AI calls, ``Internal`` and ``Introspection``
  functions, geo, bitmaps, time series, ``kql*`` and everything uncategorised.

Names compare case-insensitively (some ClickHouse names are; for the rest an unknown spelling is
an engine error, never a different function: no two 26.9 names that differ only in case fall on
both sides of this list). Aggregate combinators (``-If``, ``-State``, ``-Merge`` …) are accepted
on an allowed aggregate: ``countIf``, ``uniqExactMerge``, ``quantileExactIf``.
"""

from __future__ import annotations

# The combinators ClickHouse 26.9 lists in system.aggregate_function_combinators, minus the
# internal ``Null`` and ``Tuple``; each only reshapes how an allowed aggregate consumes its input.
COMBINATORS: tuple[str, ...] = (
    "SimpleState",
    "OrDefault",
    "Distinct",
    "Resample",
    "ForEach",
    "ArgMax",
    "ArgMin",
    "OrNull",
    "Merge",
    "State",
    "Array",
    "Map",
    "If",
)

# Aggregate and window functions (with their aliases): the bases combinators attach to.
_AGGREGATES = """
aggThrow analysisOfVariance anova any any_respect_nulls any_value any_value_respect_nulls
anyHeavy anyLast anyLast_respect_nulls anyLastRespectNulls anyRespectNulls
anyValueRespectNulls approx_top_count approx_top_k approx_top_sum argAndMax argAndMin argMax
argMin array_agg avg avgWeighted BIT_AND BIT_OR BIT_XOR boundingRatio
categoricalInformationValue contingency corr corrMatrix corrStable count COVAR_POP
COVAR_SAMP covarPop covarPopMatrix covarPopStable covarSamp covarSampMatrix covarSampStable
cramersV cramersVBiasCorrected cume_dist deltaSum deltaSumTimestamp dense_rank denseRank
distinctDynamicTypes distinctJSONPaths distinctJSONPathsAndTypes entropy
estimateCompressionRatio exponentialMovingAverage exponentialTimeDecayedAvg
exponentialTimeDecayedCount exponentialTimeDecayedMax exponentialTimeDecayedSum first_value
first_value_respect_nulls firstValueRespectNulls flameGraph gini group_concat groupArray
groupArrayInsertAt groupArrayIntersect groupArrayLast groupArrayMovingAvg
groupArrayMovingSum groupArraySample groupArraySorted groupBitAnd groupBitmap groupBitmapAnd
groupBitmapOr groupBitmapXor groupBitOr groupBitXor groupConcat groupFormat
groupNumericIndexedVector groupUniqArray histogram intervalLengthSum kolmogorovSmirnovTest
kurtPop kurtSamp lag lagInFrame largestTriangleThreeBuckets last_value
last_value_respect_nulls lastValueRespectNulls lead leadInFrame lttb mannWhitneyUTest max
max_by maxIntersections maxIntersectionsPosition maxMappedArrays meanZTest median
medianBFloat16 medianBFloat16Weighted medianDD medianDeterministic medianExact
medianExactHigh medianExactLow medianExactWeighted medianExactWeightedInterpolated medianGK
medianInterpolatedWeighted medianTDigest medianTDigestWeighted medianTiming
medianTimingWeighted mergedJSONPatch min min_by minMappedArrays nonNegativeDerivative
nothing nothingNull nothingUInt64 nth_value ntile percent_rank percentRank quantile
quantileBFloat16 quantileBFloat16Weighted quantileDD quantileDeterministic quantileExact
quantileExactExclusive quantileExactHigh quantileExactInclusive quantileExactLow
quantileExactWeighted quantileExactWeightedInterpolated quantileGK
quantileInterpolatedWeighted quantilePrometheusHistogram quantiles quantilesBFloat16
quantilesBFloat16Weighted quantilesDD quantilesDeterministic quantilesExact
quantilesExactExclusive quantilesExactHigh quantilesExactInclusive quantilesExactLow
quantilesExactWeighted quantilesExactWeightedInterpolated quantilesGK
quantilesInterpolatedWeighted quantilesPrometheusHistogram quantilesTDigest
quantilesTDigestWeighted quantilesTiming quantilesTimingWeighted quantileTDigest
quantileTDigestWeighted quantileTiming quantileTimingWeighted rank rankCorr regr_avgx
regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy retention
row_number sequenceCount sequenceMatch sequenceMatchEvents sequenceNextNode
simpleLinearRegression singleValueOrNull skewPop skewSamp sparkBar sparkbar STD STDDEV
STDDEV_POP STDDEV_SAMP stddevPop stddevPopStable stddevSamp stddevSampStable string_agg
studentTTest studentTTestOneSample sum sumCount sumKahan sumMapFiltered
sumMapFilteredWithOverflow sumMappedArrays sumMapWithOverflow sumWithOverflow theilsU
timeSeriesAvgToGrid timeSeriesBottomKMasks timeSeriesChangesToGrid timeSeriesCountToGrid
timeSeriesDeltaToGrid timeSeriesDerivToGrid timeSeriesGroupArray timeSeriesIncreaseToGrid
timeSeriesInstantDeltaToGrid timeSeriesInstantRateToGrid timeSeriesLastToGrid
timeSeriesLastTwoSamples timeSeriesLimitKMasks timeSeriesMaxToGrid timeSeriesMinToGrid
timeSeriesPredictLinearToGrid timeSeriesRateToGrid timeSeriesResampleToGridWithStaleness
timeSeriesResetsToGrid timeSeriesSumToGrid timeSeriesTimestampOfMaxToGrid
timeSeriesTimestampOfMinToGrid timeSeriesTopKMasks topK topKWeighted uniq uniqCombined
uniqCombined64 uniqExact uniqHLL12 uniqUpTo VAR_POP VAR_SAMP varPop varPopStable varSamp
varSampStable welchTTest windowFunnel
"""

# Scalar data functions by ClickHouse's own category (system.functions.categories, 26.9).
_SCALAR_FUNCTIONS: dict[str, str] = {
    "Aliases": """
array_remove array_to_string arrayAUC arrayPRAUC byteSlice CARDINALITY caseWithoutExpr
caseWithoutExpression ceiling CHAR_LENGTH CHARACTER_LENGTH concat_ws curdate current_date
current_timestamp date_bin DATE_DIFF date_diff DATE_FORMAT DATE_TRUNC DAY DAYOFMONTH
DAYOFWEEK DAYOFYEAR extractAllGroups flatten FORMAT_BYTES FROM_BASE64 FROM_DAYS
FROM_UNIXTIME from_utc_timestamp hasAllToken hasAnyToken HOUR INET6_ATON INET6_NTOA
INET_ATON INET_NTOA instr isASCII JSON_ARRAY_LENGTH jsonMergePatch LAST_DAY lcase
levenshteinDistance levenshteinDistanceUTF8 ln localtimestamp lpad ltrim MAP_FROM_ARRAYS
mapContains mapFromString matchPhrase MICROSECOND mid MILLISECOND minSampleSizeContinous
MINUTE mismatches mod modOrNull MONTH NANOSECOND NATURAL_SORT_KEY OCTET_LENGTH pmod
pmodOrNull positive_modulo positive_modulo_or_null power QUARTER rand32 REGEXP_EXTRACT
regexp_instr REGEXP_MATCHES REGEXP_REPLACE REGEXP_SUBSTR regexpInstr removeAccentsUTF8
replace rpad rtrim scalarProduct SECOND splitByAlpha sqid str_to_date str_to_map substr
SUBSTRING_INDEX time_bucket TIMESTAMP_DIFF timestamp_diff timestampDiff timeZoneOf
timeZoneOffset TO_BASE64 TO_DAYS TO_UNIXTIME to_utc_timestamp toStartOfFiveMinute toTimeZone
trim truncate ucase unnest UTC_timestamp vectorDifference vectorSum visitParamExtractBool
visitParamExtractFloat visitParamExtractInt visitParamExtractRaw visitParamExtractString
visitParamExtractUInt visitParamHas week width_bucket yandexConsistentHash YEAR yearweek
""",
    "Arithmetic": """
abs avg2 byteSwap divide divideDecimal divideOrNull gcd ifNotFinite intDiv intDivOrNull
intDivOrZero isFinite isInfinite isNaN lcm max2 midpoint min2 minus modulo moduloLegacy
moduloOrNull moduloOrZero multiply multiplyDecimal negate plus positiveModulo
positiveModuloOrNull sqr
""",
    "Arrays": """
array arrayAll arrayAUCPR arrayAutocorrelation arrayAvg arrayBottomK arrayCompact
arrayConcat arrayCount arrayCumSum arrayCumSumNonNegative arrayDifference arrayDistinct
arrayDotProduct arrayElement arrayElementOrNull arrayEnumerate arrayEnumerateDense
arrayEnumerateDenseRanked arrayEnumerateUniq arrayEnumerateUniqRanked arrayExcept
arrayExists arrayFill arrayFilter arrayFirst arrayFirstIndex arrayFirstOrNull arrayFlatten
arrayFlattenedLength arrayFold arrayIntersect arrayJaccardIndex arrayJoin arrayLast
arrayLastIndex arrayLastOrNull arrayLevenshteinDistance arrayLevenshteinDistanceWeighted
arrayMap arrayMax arrayMin arrayNormalizedGini arrayPartialReverseSort arrayPartialShuffle
arrayPartialSort arrayPopBack arrayPopFront arrayProduct arrayPushBack arrayPushFront
arrayRandomSample arrayReduce arrayReduceInRanges arrayRemove arrayResize arrayReverse
arrayReverseFill arrayReverseSort arrayReverseSplit arrayROCAUC arrayRotateLeft
arrayRotateRight arrayShiftLeft arrayShiftRight arrayShingles arrayShuffle arraySimilarity
arraySlice arraySort arraySplit arraySum arraySymmetricDifference arrayTopK arrayTranspose
arrayUnion arrayUniq arrayWithConstant arrayZip arrayZipUnaligned countEqual empty
emptyArrayDate emptyArrayDateTime emptyArrayFloat32 emptyArrayFloat64 emptyArrayInt16
emptyArrayInt32 emptyArrayInt64 emptyArrayInt8 emptyArrayString emptyArrayToSingle
emptyArrayUInt16 emptyArrayUInt32 emptyArrayUInt64 emptyArrayUInt8 has hasAll hasAny
hasSubstr indexOf indexOfAssumeSorted length notEmpty notHas randomHadamardTransform range
replicate reverse
""",
    "Bit": """
bitAnd bitCount bitHammingDistance bitNot bitOr bitRotateLeft bitRotateRight bitShiftLeft
bitShiftRight bitSlice bitTest bitTestAll bitTestAny bitXor
""",
    "Comparison": """
equals greater greaterOrEquals inIgnoreSet isDistinctFrom isNotDistinctFrom less
lessOrEquals notEquals
""",
    "Conditional": """
clamp greatest if least multiIf
""",
    "Dates and Times": """
addDate addDays addHours addInterval addMicroseconds addMilliseconds addMinutes addMonths
addNanoseconds addQuarters addSeconds addTupleOfIntervals addWeeks addYears age changeDay
changeHour changeMinute changeMonth changeSecond changeYear dateDiff dateName dateTrunc
formatDateTime formatDateTimeInJodaSyntax fromDaysSinceYearZero fromDaysSinceYearZero32
fromModifiedJulianDay fromModifiedJulianDayOrNull fromUnixTimestamp
fromUnixTimestampInJodaSyntax fromUTCTimestamp localtime makeDate makeDate32 makeDateTime
makeDateTime64 monthName now now64 nowInBlock nowInBlock64 subDate subtractDays
subtractHours subtractInterval subtractMicroseconds subtractMilliseconds subtractMinutes
subtractMonths subtractNanoseconds subtractQuarters subtractSeconds subtractTupleOfIntervals
subtractWeeks subtractYears timeDiff timeSlot timeSlots timestamp timezoneOf timezoneOffset
today toDayOfMonth toDayOfWeek toDayOfYear toDaysInMonth toDaysSinceYearZero toHour
toISOWeek toISOYear toLastDayOfMonth toLastDayOfWeek toMicrosecond toMillisecond toMinute
toModifiedJulianDay toModifiedJulianDayOrNull toMonday toMonth toMonthNumSinceEpoch
toNanosecond toQuarter toRelativeDayNum toRelativeHourNum toRelativeMinuteNum
toRelativeMonthNum toRelativeQuarterNum toRelativeSecondNum toRelativeWeekNum
toRelativeYearNum toSecond toStartOfDay toStartOfFifteenMinutes toStartOfFiveMinutes
toStartOfHour toStartOfInterval toStartOfISOYear toStartOfMicrosecond toStartOfMillisecond
toStartOfMinute toStartOfMonth toStartOfNanosecond toStartOfQuarter toStartOfSecond
toStartOfTenMinutes toStartOfWeek toStartOfYear toTimeWithFixedDate toTimezone
toUnixTimestamp toUTCTimestamp toWeek toYear toYearNumSinceEpoch toYearWeek toYYYYMM
toYYYYMMDD toYYYYMMDDhhmmss UTCTimestamp yesterday YYYYMMDDhhmmssToDateTime
YYYYMMDDhhmmssToDateTime64 YYYYMMDDToDate YYYYMMDDToDate32
""",
    "Encoding": """
bin bitmaskToArray bitmaskToList bitPositionsToArray char hex hilbertDecode hilbertEncode
mortonDecode mortonEncode sqidDecode sqidEncode unbin unhex
""",
    "Financial": """
financialInternalRateOfReturn financialInternalRateOfReturnExtended financialNetPresentValue
financialNetPresentValueExtended
""",
    "Hash": """
cityHash64 farmFingerprint64 farmHash64 gccMurmurHash halfMD5 hiveHash icebergHash intHash32
intHash64 javaHash javaHashUTF16LE jumpConsistentHash kafkaMurmurHash keccak256
kostikConsistentHash MD4 MD5 metroHash64 murmurHash2_32 murmurHash2_64 murmurHash3_128
murmurHash3_32 murmurHash3_64 ngramMinHash ngramMinHashArg ngramMinHashArgCaseInsensitive
ngramMinHashArgCaseInsensitiveUTF8 ngramMinHashArgUTF8 ngramMinHashCaseInsensitive
ngramMinHashCaseInsensitiveUTF8 ngramMinHashUTF8 ngramSimHash ngramSimHashCaseInsensitive
ngramSimHashCaseInsensitiveUTF8 ngramSimHashUTF8 RIPEMD160 SHA1 SHA224 SHA256 SHA384 SHA512
SHA512_256 sipHash128 sipHash128Keyed sipHash128Reference sipHash128ReferenceKeyed sipHash64
sipHash64Keyed URLHash wordShingleMinHash wordShingleMinHashArg
wordShingleMinHashArgCaseInsensitive wordShingleMinHashArgCaseInsensitiveUTF8
wordShingleMinHashArgUTF8 wordShingleMinHashCaseInsensitive
wordShingleMinHashCaseInsensitiveUTF8 wordShingleMinHashUTF8 wordShingleSimHash
wordShingleSimHashCaseInsensitive wordShingleSimHashCaseInsensitiveUTF8
wordShingleSimHashUTF8 wyHash64 xxh3 xxh3_128 xxHash32 xxHash64 xxHash64Spark
""",
    "IP Address": """
cutIPv6 IPv4CIDRToRange IPv4NumToString IPv4NumToStringClassC IPv4StringToNum
IPv4StringToNumOrDefault IPv4StringToNumOrNull IPv4ToIPv6 IPv6CIDRToRange IPv6NumToString
IPv6StringToNum IPv6StringToNumOrDefault IPv6StringToNumOrNull isIPAddressInRange
isIPv4String isIPv6String toIPv4 toIPv4OrDefault toIPv4OrNull toIPv4OrZero toIPv6
toIPv6OrDefault toIPv6OrNull toIPv6OrZero
""",
    "JSON": """
dynamicElement dynamicType isDynamicElementInSharedData isValidJSON JSON_EXISTS JSON_QUERY
JSON_VALUE JSONAllPaths JSONAllPathsWithTypes JSONAllValues JSONArrayLength JSONDynamicPaths
JSONDynamicPathsWithTypes JSONExtract JSONExtractArrayRaw JSONExtractArrayRawCaseInsensitive
JSONExtractBool JSONExtractBoolCaseInsensitive JSONExtractCaseInsensitive JSONExtractFloat
JSONExtractFloatCaseInsensitive JSONExtractInt JSONExtractIntCaseInsensitive JSONExtractKeys
JSONExtractKeysAndValues JSONExtractKeysAndValuesCaseInsensitive JSONExtractKeysAndValuesRaw
JSONExtractKeysAndValuesRawCaseInsensitive JSONExtractKeysCaseInsensitive JSONExtractRaw
JSONExtractRawCaseInsensitive JSONExtractString JSONExtractStringCaseInsensitive
JSONExtractUInt JSONExtractUIntCaseInsensitive JSONHas JSONKey JSONLength JSONMergePatch
JSONSharedDataPaths JSONSharedDataPathsWithTypes JSONType prettyPrintJSON
simpleJSONExtractBool simpleJSONExtractFloat simpleJSONExtractInt simpleJSONExtractRaw
simpleJSONExtractString simpleJSONExtractUInt simpleJSONHas toJSONString
""",
    "Logical": """
and not or xor
""",
    "Map": """
extractKeyValuePairs extractKeyValuePairsWithEscaping map mapAdd mapAll mapApply mapConcat
mapContainsKey mapContainsKeyLike mapContainsValue mapContainsValueLike mapExists
mapExtractKeyLike mapExtractValueLike mapFilter mapFromArrays mapKeys mapPartialReverseSort
mapPartialSort mapPopulateSeries mapReverseSort mapSort mapSubtract mapUpdate mapValues
""",
    "Mathematical": """
acos acosh asin asinh atan atan2 atanh cbrt cos cosh degrees e erf erfc exp exp10 exp2
factorial hypot intExp10 intExp2 isPrime isProbablePrime lgamma log log10 log1p log2 pi pow
proportionsZTest radians sigmoid sign sin sinh sqrt tan tanh tgamma widthBucket
""",
    "Null": """
assumeNotNull coalesce firstNonDefault ifNull isNotNull isNull isNullable isZeroOrNull
nullIf toNullable
""",
    "Other": """
bar byteSize countDigits finalizeAggregation formatReadableDecimalSize
formatReadableQuantity formatReadableSize formatReadableTimeDelta identity ignore
initializeAggregation isConstant isDecimalOverflow materialize minSampleSizeContinuous
minSampleSizeConversion parseISO8601Duration parseReadableSize parseReadableSizeOrNull
parseReadableSizeOrZero parseTimeDelta sleep sleepEachRow throwIf toTypeName transform
variantElement variantType visibleWidth
""",
    "Random Number": """
fuzzBits rand rand64 randBernoulli randBinomial randCanonical randChiSquared randConstant
randExponential randFisherF randLogNormal randNegativeBinomial randNormal randomFixedString
randomPrintableASCII randomString randomStringUTF8 randPoisson randStudentT randUniform
""",
    "Rounding": """
ceil floor round roundAge roundBankers roundDown roundDuration roundToExp2 trunc
""",
    "String": """
appendTrailingCharIfAbsent ascii base32Decode base32Encode base58Decode base58Encode
base64Decode base64Encode base64URLDecode base64URLEncode basename byteHammingDistance
caseFoldUTF8 compareSubstrings concat concatAssumeInjective concatWithSeparator
concatWithSeparatorAssumeInjective conv convertCharset CRC32 CRC32IEEE CRC64
damerauLevenshteinDistance decodeHTMLComponent decodeXMLComponent editDistance
editDistanceUTF8 encodeXMLComponent endsWith endsWithCaseInsensitive
endsWithCaseInsensitiveUTF8 endsWithUTF8 extractTextFromHTML firstLine initcap initcapUTF8
isValidASCII isValidUTF8 jaroSimilarity jaroWinklerSimilarity left leftPad leftPadUTF8
leftUTF8 lengthUTF8 lower lowerUTF8 naturalSortKey normalizeUTF8NFC normalizeUTF8NFD
normalizeUTF8NFKC normalizeUTF8NFKCCasefold normalizeUTF8NFKD regexpExtract regexpPosition
removeDiacriticsUTF8 repeat reverseUTF8 right rightPad rightPadUTF8 rightUTF8 soundex space
sparseGrams sparseGramsHashes sparseGramsHashesUTF8 sparseGramsUTF8 startsWith
startsWithCaseInsensitive startsWithCaseInsensitiveUTF8 startsWithUTF8 stringBytesEntropy
stringBytesUniq stringJaccardIndex stringJaccardIndexUTF8 substring substringIndex
substringIndexUTF8 substringUTF8 toValidUTF8 trimBoth trimLeft trimRight tryBase32Decode
tryBase58Decode tryBase64Decode tryBase64URLDecode upper upperUTF8
""",
    "String Replacement": """
format overlay overlayUTF8 printf regexpQuoteMeta replaceAll replaceOne replaceRegexpAll
replaceRegexpOne translate translateUTF8
""",
    "String Search": """
countMatches countMatchesCaseInsensitive countSubstrings countSubstringsCaseInsensitive
countSubstringsCaseInsensitiveUTF8 extract extractAll extractAllGroupsHorizontal
extractGroups hasAllTokens hasAnyTokens hasPhrase hasSubsequence
hasSubsequenceCaseInsensitive hasSubsequenceCaseInsensitiveUTF8 hasSubsequenceUTF8 hasToken
hasTokenCaseInsensitive hasTokenCaseInsensitiveOrNull hasTokenOrNull highlight ilike like
locate match matchCaseInsensitive multiFuzzyMatchAllIndices multiFuzzyMatchAny
multiFuzzyMatchAnyIndex multiMatchAllIndices multiMatchAny multiMatchAnyIndex
multiSearchAllPositions multiSearchAllPositionsCaseInsensitive
multiSearchAllPositionsCaseInsensitiveUTF8 multiSearchAllPositionsUTF8 multiSearchAny
multiSearchAnyCaseInsensitive multiSearchAnyCaseInsensitiveUTF8 multiSearchAnyUTF8
multiSearchFirstIndex multiSearchFirstIndexCaseInsensitive
multiSearchFirstIndexCaseInsensitiveUTF8 multiSearchFirstIndexUTF8 multiSearchFirstPosition
multiSearchFirstPositionCaseInsensitive multiSearchFirstPositionCaseInsensitiveUTF8
multiSearchFirstPositionUTF8 ngramDistance ngramDistanceCaseInsensitive
ngramDistanceCaseInsensitiveUTF8 ngramDistanceUTF8 ngramSearch ngramSearchCaseInsensitive
ngramSearchCaseInsensitiveUTF8 ngramSearchUTF8 notILike notLike notMatch
notMatchCaseInsensitive position positionCaseInsensitive positionCaseInsensitiveUTF8
positionUTF8
""",
    "String Splitting": """
alphaTokens arrayStringConcat extractAllGroupsVertical ngrams reverseBySeparator splitByChar
splitByNonAlpha splitByRegexp splitByString splitByWhitespace tokens tokensForLikePattern
""",
    "Tuple": """
dotProduct flattenTuple tuple tupleConcat tupleDivide tupleDivideByNumber tupleElement
tupleHammingDistance tupleIntDiv tupleIntDivByNumber tupleIntDivOrZero
tupleIntDivOrZeroByNumber tupleMinus tupleModulo tupleModuloByNumber tupleMultiply
tupleMultiplyByNumber tupleNames tupleNegate tuplePlus tuplePositiveModuloByNumber
tupleToNameValuePairs
""",
    "Type Conversion": """
accurateCast accurateCastOrDefault accurateCastOrNull CAST DATE formatRow formatRowNoNewline
fromUnixTimestamp64Micro fromUnixTimestamp64Milli fromUnixTimestamp64Nano
fromUnixTimestamp64Second parseDateTime parseDateTime32BestEffort
parseDateTime32BestEffortOrNull parseDateTime32BestEffortOrZero parseDateTime64
parseDateTime64BestEffort parseDateTime64BestEffortOrNull parseDateTime64BestEffortOrZero
parseDateTime64BestEffortUS parseDateTime64BestEffortUSOrNull
parseDateTime64BestEffortUSOrZero parseDateTime64InJodaSyntax
parseDateTime64InJodaSyntaxOrNull parseDateTime64InJodaSyntaxOrZero parseDateTime64OrNull
parseDateTime64OrZero parseDateTimeBestEffort parseDateTimeBestEffortOrNull
parseDateTimeBestEffortOrZero parseDateTimeBestEffortUS parseDateTimeBestEffortUSOrNull
parseDateTimeBestEffortUSOrZero parseDateTimeInJodaSyntax parseDateTimeInJodaSyntaxOrNull
parseDateTimeInJodaSyntaxOrZero parseDateTimeOrNull parseDateTimeOrZero reinterpret
reinterpretAsDate reinterpretAsDateTime reinterpretAsFixedString reinterpretAsFloat32
reinterpretAsFloat64 reinterpretAsInt128 reinterpretAsInt16 reinterpretAsInt256
reinterpretAsInt32 reinterpretAsInt64 reinterpretAsInt8 reinterpretAsString
reinterpretAsUInt128 reinterpretAsUInt16 reinterpretAsUInt256 reinterpretAsUInt32
reinterpretAsUInt64 reinterpretAsUInt8 reinterpretAsUUID toBFloat16 toBFloat16OrNull
toBFloat16OrZero toBool toDate toDate32 toDate32OrDefault toDate32OrNull toDate32OrZero
toDateOrDefault toDateOrNull toDateOrZero toDateTime toDateTime32 toDateTime64
toDateTime64OrDefault toDateTime64OrNull toDateTime64OrZero toDateTimeOrDefault
toDateTimeOrNull toDateTimeOrZero toDecimal128 toDecimal128OrDefault toDecimal128OrNull
toDecimal128OrZero toDecimal256 toDecimal256OrDefault toDecimal256OrNull toDecimal256OrZero
toDecimal32 toDecimal32OrDefault toDecimal32OrNull toDecimal32OrZero toDecimal64
toDecimal64OrDefault toDecimal64OrNull toDecimal64OrZero toDecimalString toFixedString
toFloat32 toFloat32OrDefault toFloat32OrNull toFloat32OrZero toFloat64 toFloat64OrDefault
toFloat64OrNull toFloat64OrZero toInt128 toInt128OrDefault toInt128OrNull toInt128OrZero
toInt16 toInt16OrDefault toInt16OrNull toInt16OrZero toInt256 toInt256OrDefault
toInt256OrNull toInt256OrZero toInt32 toInt32OrDefault toInt32OrNull toInt32OrZero toInt64
toInt64OrDefault toInt64OrNull toInt64OrZero toInt8 toInt8OrDefault toInt8OrNull
toInt8OrZero toInterval toIntervalDay toIntervalHour toIntervalMicrosecond
toIntervalMillisecond toIntervalMinute toIntervalMonth toIntervalNanosecond
toIntervalQuarter toIntervalSecond toIntervalWeek toIntervalYear toLowCardinality toString
toStringCutToZero toTime toTime64 toTime64OrNull toTime64OrZero toTimeOrNull toTimeOrZero
toUInt128 toUInt128OrDefault toUInt128OrNull toUInt128OrZero toUInt16 toUInt16OrDefault
toUInt16OrNull toUInt16OrZero toUInt256 toUInt256OrDefault toUInt256OrNull toUInt256OrZero
toUInt32 toUInt32OrDefault toUInt32OrNull toUInt32OrZero toUInt64 toUInt64OrDefault
toUInt64OrNull toUInt64OrZero toUInt8 toUInt8OrDefault toUInt8OrNull toUInt8OrZero
toUnixTimestamp64Micro toUnixTimestamp64Milli toUnixTimestamp64Nano toUnixTimestamp64Second
toUUID toUUIDOrZero
""",
    "URL": """
cutFragment cutQueryString cutQueryStringAndFragment cutToFirstSignificantSubdomain
cutToFirstSignificantSubdomainCustom cutToFirstSignificantSubdomainCustomRFC
cutToFirstSignificantSubdomainCustomWithWWW cutToFirstSignificantSubdomainCustomWithWWWRFC
cutToFirstSignificantSubdomainRFC cutToFirstSignificantSubdomainWithWWW
cutToFirstSignificantSubdomainWithWWWRFC cutURLParameter cutWWW decodeURLComponent
decodeURLFormComponent domain domainRFC domainWithoutWWW domainWithoutWWWRFC
encodeURLComponent encodeURLFormComponent extractURLParameter extractURLParameterNames
extractURLParameters firstSignificantSubdomain firstSignificantSubdomainCustom
firstSignificantSubdomainCustomRFC firstSignificantSubdomainRFC fragment netloc path
pathFull port portRFC protocol queryString queryStringAndFragment topLevelDomain
topLevelDomainRFC URLHierarchy URLPathHierarchy
""",
    "UUID": """
dateTime64ToSnowflakeID dateTimeToSnowflakeID dateTimeToUUIDv7 generateSnowflakeID
generateUUIDv4 generateUUIDv7 snowflakeIDToDateTime snowflakeIDToDateTime64 toUUIDOrDefault
toUUIDOrNull UUIDNumToString UUIDStringToNum UUIDToNum UUIDv7ToDateTime
""",
}

AGGREGATE_FUNCTIONS: frozenset[str] = frozenset(_AGGREGATES.split())
SCALAR_FUNCTIONS: frozenset[str] = frozenset(
    name for names in _SCALAR_FUNCTIONS.values() for name in names.split()
)
ALLOWED_FUNCTIONS: frozenset[str] = AGGREGATE_FUNCTIONS | SCALAR_FUNCTIONS
_ALLOWED_LOWER = frozenset(name.lower() for name in ALLOWED_FUNCTIONS)
_AGGREGATES_LOWER = frozenset(name.lower() for name in AGGREGATE_FUNCTIONS)
_COMBINATORS_LOWER = tuple(suffix.lower() for suffix in COMBINATORS)
# Call-shaped syntax that ClickHouse's parser rewrites itself and system.functions does not list:
# EXISTS (subquery), COLUMNS('regex') (matches real columns only, never virtual ones: measured),
# untuple(t), and DATE_ADD/DATE_SUB/TIMESTAMP_ADD/TIMESTAMP_SUB (rewritten to plus/minus of an
# interval).
_SYNTAX = frozenset(
    {
        "exists",
        "columns",
        "untuple",
        "dateadd",
        "date_add",
        "datesub",
        "date_sub",
        "timestampadd",
        "timestamp_add",
        "timestampsub",
        "timestamp_sub",
    }
)


def is_allowed_function(name: str) -> bool:
    """True when ad-hoc SQL may call ``name``: a listed data function, or an allowed aggregate
    with combinator suffixes (``sumIf``, ``uniqExactIfState``)."""
    lowered = name.lower()
    if lowered in _ALLOWED_LOWER or lowered in _SYNTAX:
        return True
    stripped = lowered
    while True:
        for suffix in _COMBINATORS_LOWER:
            if stripped.endswith(suffix) and len(stripped) > len(suffix):
                stripped = stripped[: -len(suffix)]
                break
        else:
            return False
        if stripped in _AGGREGATES_LOWER:
            return True
