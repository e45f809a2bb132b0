"""The scientific shapes' structures: four Pegasus workflows, and their task types' work.

Montage, Epigenomics, CyberShake and LIGO Inspiral as Bharathi et al. (2008)
and Juve et al. (2013) describe them; each grows its fan-out in whole units
(an image, a read chunk, a synthesis, a segment) to land near the size asked.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sim.world.dag_shapes.synthetic import Builder, Structure, split_evenly

__all__ = ["RELATIVE_WORK", "cybershake", "epigenomics", "ligo", "montage"]

# Mean runtime of each task type relative to the others, rounded from the
# per-type means reported by Juve et al. 2013 (Tables for Montage, Epigenomics,
# CyberShake and LIGO Inspiral). Only the ratios matter: a graph's work is
# rescaled so that its mean task takes ``work_mean_s``.
RELATIVE_WORK: dict[str, float] = {
    # Montage
    "mProjectPP": 1.73,
    "mDiffFit": 0.66,
    "mConcatFit": 143.0,
    "mBgModel": 384.0,
    "mBackground": 1.72,
    "mImgtbl": 2.78,
    "mAdd": 282.0,
    "mShrink": 66.1,
    "mJPEG": 0.64,
    # Epigenomics
    "fastQSplit": 34.3,
    "filterContams": 2.47,
    "sol2sanger": 0.48,
    "fastq2bfq": 1.40,
    "map": 189.0,
    "mapMerge": 11.0,
    "maqIndex": 43.9,
    "pileup": 56.0,
    # CyberShake
    "ExtractSGT": 111.0,
    "SeismogramSynthesis": 79.5,
    "ZipSeis": 266.0,
    "PeakValCalcOkaya": 0.55,
    "ZipPSA": 196.0,
    # LIGO Inspiral
    "TmpltBank": 18.1,
    "Inspiral": 460.0,
    "Thinca": 5.37,
    "TrigBank": 5.11,
}


def _fit(size: int, total_for: Callable[[int], int], lo: int = 1) -> int:
    """The smallest width parameter k >= lo whose structure size is closest to *size*.

    ``total_for(k)`` must grow with k; the search stops once it passes *size*.
    """
    best_k, best_err = lo, abs(total_for(lo) - size)
    k = lo
    while total_for(k) < size:
        k += 1
        err = abs(total_for(k) - size)
        if err < best_err:
            best_k, best_err = k, err
    return best_k


def _grid_pairs(n: int) -> list[tuple[int, int]]:
    """Overlapping neighbours among n images tiled row by row in a near-square grid.

    Each image overlaps its right, lower, lower-right and lower-left
    neighbours, which gives the ~2-4 mDiffFit jobs per image seen in real
    Montage runs (Montage_25: 5 images, 9 differences).
    """
    cols = max(1, math.ceil(math.sqrt(n)))
    pairs: list[tuple[int, int]] = []
    for i in range(n):
        r, c = divmod(i, cols)
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            rr, cc = r + dr, c + dc
            if 0 <= cc < cols:
                j = rr * cols + cc
                if j < n:
                    pairs.append((i, j))
    return pairs


def montage(size: int) -> Structure:
    """Montage mosaic: project, difference overlaps, fit a background model, correct, co-add.

    mProjectPP per image; mDiffFit per overlapping pair of projected images;
    mConcatFit gathers the fits; mBgModel solves the background model;
    mBackground per image, reading the model and its projected image; then
    mImgtbl → mAdd → mShrink → mJPEG.
    """
    n = _fit(size, lambda k: 2 * k + len(_grid_pairs(k)) + 6)
    b = Builder()
    proj = [b.add("mProjectPP") for _ in range(n)]
    diffs = [b.add("mDiffFit", proj[i], proj[j]) for i, j in _grid_pairs(n)]
    concat = b.add("mConcatFit", *diffs)
    model = b.add("mBgModel", concat)
    backs = [b.add("mBackground", model, proj[i]) for i in range(n)]
    tbl = b.add("mImgtbl", *backs)
    add = b.add("mAdd", tbl)
    shrink = b.add("mShrink", add)
    b.add("mJPEG", shrink)
    return b.result()


def _epigenomics_lanes(chains: int) -> int:
    """Sequencing lanes (fastQSplit jobs) for a run with *chains* read chunks: one per ~16."""
    return max(1, round(chains / 16))


def _epigenomics_total(chains: int) -> int:
    lanes = _epigenomics_lanes(chains)
    merges = 1 if lanes == 1 else lanes + 1
    return lanes + 4 * chains + merges + 2


def epigenomics(size: int) -> Structure:
    """Epigenomics (USC genome mapping): split reads, filter and map chunks, merge, index, pileup.

    Each lane's fastQSplit fans out into chunks, each a chain
    filterContams → sol2sanger → fastq2bfq → map. With one lane the maps
    merge straight into the single mapMerge; with several, each lane has its
    own mapMerge and a final mapMerge joins them. Then maqIndex → pileup.
    The number of chains grows linearly with size (Epigenomics_24: one lane
    of five chains).
    """
    chains = _fit(size, _epigenomics_total)
    lanes = _epigenomics_lanes(chains)
    b = Builder()
    lane_merges: list[int] = []
    lane_maps: list[list[int]] = []
    for width in split_evenly(chains, lanes):
        split = b.add("fastQSplit")
        maps = []
        for _ in range(width):
            node = b.add("filterContams", split)
            node = b.add("sol2sanger", node)
            node = b.add("fastq2bfq", node)
            maps.append(b.add("map", node))
        lane_maps.append(maps)
    if lanes == 1:
        final = b.add("mapMerge", *lane_maps[0])
    else:
        lane_merges = [b.add("mapMerge", *maps) for maps in lane_maps]
        final = b.add("mapMerge", *lane_merges)
    index = b.add("maqIndex", final)
    b.add("pileup", index)
    return b.result()


def _cybershake_sources(synth: int) -> int:
    return 1 if synth < 2 else max(2, round(synth / 25))


def cybershake(size: int) -> Structure:
    """CyberShake hazard curve: extract strain Green tensors, synthesise seismograms, peak values.

    A few ExtractSGT jobs each feed a share of the SeismogramSynthesis jobs;
    each synthesis feeds one PeakValCalcOkaya. ZipSeis gathers every
    seismogram and ZipPSA every peak value — two exits (CyberShake_30: two
    ExtractSGT, 13 syntheses).
    """
    synth = _fit(size, lambda k: _cybershake_sources(k) + 2 * k + 2)
    b = Builder()
    sources = [b.add("ExtractSGT") for _ in range(_cybershake_sources(synth))]
    seis: list[int] = []
    for src, width in zip(sources, split_evenly(synth, len(sources)), strict=True):
        seis.extend(b.add("SeismogramSynthesis", src) for _ in range(width))
    peaks = [b.add("PeakValCalcOkaya", s) for s in seis]
    b.add("ZipSeis", *seis)
    b.add("ZipPSA", *peaks)
    return b.result()


def _ligo_groups(pairs: int) -> int:
    return max(1, round(pairs / 6))


def ligo(size: int) -> Structure:
    """LIGO Inspiral: independent blocks of two filtering passes joined by coincidence tests.

    In each block, TmpltBank → Inspiral per data segment, a Thinca over the
    block's inspirals, then TrigBank → Inspiral per segment again and a
    second Thinca. Blocks (about six segments each) share nothing, so the
    graph has several entries and exits, as the published workflow does.
    """
    pairs = _fit(size, lambda k: 4 * k + 2 * _ligo_groups(k))
    b = Builder()
    for width in split_evenly(pairs, _ligo_groups(pairs)):
        first = [b.add("Inspiral", b.add("TmpltBank")) for _ in range(width)]
        thinca = b.add("Thinca", *first)
        second = [b.add("Inspiral", b.add("TrigBank", thinca)) for _ in range(width)]
        b.add("Thinca", *second)
    return b.result()
