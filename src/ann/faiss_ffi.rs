//! The only module that touches FAISS: a handful of calls into its C API, each wrapped so that no FAISS
//! type, pointer or error code leaves this file.
//!
//! The safe `faiss` crate covers building and searching, but not what fiq needs to serve an index from a
//! memory map: reading with `IO_FLAG_MMAP` (the crate's `IoFlags::MEM_MAP` passes 0x1, which FAISS 1.12's
//! IVF reader ignores), searching with a precomputed list assignment, and the list sizes. So fiq calls
//! `faiss_sys` directly, here only.

use std::ffi::{CStr, CString};
use std::os::raw::{c_int, c_void};
use std::path::Path;
use std::ptr::{self, NonNull};

use faiss_sys as sys;

use super::AnnError;

/// `faiss::IO_FLAG_MMAP` (index_io.h): `IO_FLAG_SKIP_IVF_DATA` plus "od" in the high bits, which makes
/// the reader hand the `"ilar"` section to the `"ilod"` hook: it reads the list sizes, maps the file
/// (`PROT_READ`, `MAP_SHARED`) and points each list at its bytes in the map. Nothing of the lists is read.
const IO_FLAG_MMAP: c_int = 8 | 0x646f_0000;
/// `faiss::IO_FLAG_READ_ONLY`.
const IO_FLAG_READ_ONLY: c_int = 2;
unsafe extern "C" {
    /// `IndexIVF::search_preassigned` with search parameters (`src/ann/cxx/filtered_search.cpp`):
    /// `index` is a `FaissIndexIVF`, `params` a `FaissSearchParametersIVF`; returns the C API's codes.
    fn fiq_ivf_search_preassigned(
        index: *const c_void,
        n: i64,
        x: *const f32,
        k: i64,
        assign: *const i64,
        centroid_dis: *const f32,
        distances: *mut f32,
        labels: *mut i64,
        params: *const c_void,
    ) -> c_int;
}

/// An owned FAISS index.
pub(crate) struct RawIndex {
    ptr: NonNull<sys::FaissIndex>,
}

// SAFETY: the index is a plain heap object with no thread affinity. After building, fiq only calls
// FAISS's const search functions on it (the per-call `nprobe` is the width of the assignment fiq passes,
// never a write to the index's `nprobe` field, which is set once before the index is shared), which FAISS
// documents as safe to call from several threads at once. Mutation (`train`, `add`)
// takes `&mut self`, so the borrow checker keeps it exclusive.
unsafe impl Send for RawIndex {}
// SAFETY: see `Send` above: shared references only reach const, thread-safe FAISS calls.
unsafe impl Sync for RawIndex {}

impl Drop for RawIndex {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from a FAISS constructor, is owned by this value alone and is freed once.
        unsafe { sys::faiss_Index_free(self.ptr.as_ptr()) }
    }
}

/// Turns a FAISS status code into an error holding FAISS's message for the failed call.
fn check(code: c_int, operation: impl FnOnce() -> String) -> Result<(), AnnError> {
    if code == 0 {
        return Ok(());
    }
    // SAFETY: faiss_get_last_error returns a thread-local, NUL-terminated string (or null) that stays valid
    // until the next FAISS call on this thread; it is copied before any other call.
    let message = unsafe {
        let text = sys::faiss_get_last_error();
        if text.is_null() {
            format!("error code {code}")
        } else {
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    };
    Err(AnnError::Faiss {
        operation: operation(),
        message,
    })
}

fn c_path(path: &Path) -> Result<CString, AnnError> {
    CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| AnnError::CorruptFile {
        path: path.to_path_buf(),
        problem: "the path holds a NUL byte".into(),
    })
}

impl RawIndex {
    /// Makes an empty inner-product index from a FAISS factory string.
    pub(crate) fn from_factory(dim: usize, factory: &str) -> Result<RawIndex, AnnError> {
        let description = CString::new(factory)
            .map_err(|_| AnnError::invalid("factory", factory, "holds a NUL byte"))?;
        let d = c_int::try_from(dim)
            .map_err(|_| AnnError::invalid("dim", dim, "too large for FAISS"))?;
        let mut out: *mut sys::FaissIndex = ptr::null_mut();
        // SAFETY: `out` is a valid place for the result; `description` is NUL-terminated and outlives the call.
        let code = unsafe {
            sys::faiss_index_factory(
                &mut out,
                d,
                description.as_ptr(),
                sys::FaissMetricType_METRIC_INNER_PRODUCT,
            )
        };
        check(code, || format!("create an index from factory {factory:?}"))?;
        Self::own(out, || format!("create an index from factory {factory:?}"))
    }

    /// Reads an index written by [`RawIndex::write`], mapping its inverted lists instead of reading them.
    ///
    /// FAISS reads the headers and the coarse centroids (`nlist * d` floats), then, for the lists, only
    /// their sizes; it maps the whole file read-only and serves each list from the map. The map lives as
    /// long as the index. FAISS checks the start of the lists against the file length but not their
    /// end: [`super::AnnIndex::open`] checks that before any search touches them.
    pub(crate) fn read_mapped(path: &Path) -> Result<RawIndex, AnnError> {
        let name = c_path(path)?;
        let mut out: *mut sys::FaissIndex = ptr::null_mut();
        // SAFETY: `name` is NUL-terminated and outlives the call; `out` is a valid place for the result.
        // FAISS's reader checks every section it reads against the file and reports a short file as an
        // error; the mapped lists are only touched by searches, after the caller's bounds check.
        let code = unsafe {
            sys::faiss_read_index_fname(name.as_ptr(), IO_FLAG_MMAP | IO_FLAG_READ_ONLY, &mut out)
        };
        check(code, || format!("read {}", path.display()))?;
        Self::own(out, || format!("read {}", path.display()))
    }

    /// Reads an index written by [`RawIndex::write`] wholly into memory (lists included), so that it can
    /// be changed: the compaction empties it ([`RawIndex::reset`]) and refills it with the same trained
    /// centroids and codes.
    pub(crate) fn read_whole(path: &Path) -> Result<RawIndex, AnnError> {
        let name = c_path(path)?;
        let mut out: *mut sys::FaissIndex = ptr::null_mut();
        // SAFETY: `name` is NUL-terminated and outlives the call; `out` is a valid place for the result.
        // FAISS checks every section it reads against the file.
        let code = unsafe { sys::faiss_read_index_fname(name.as_ptr(), 0, &mut out) };
        check(code, || format!("read {}", path.display()))?;
        Self::own(out, || format!("read {}", path.display()))
    }

    /// Removes every vector, keeping what was trained (centroids, code parameters).
    pub(crate) fn reset(&mut self) -> Result<(), AnnError> {
        // SAFETY: the index pointer is valid and `&mut self` is exclusive.
        let code = unsafe { sys::faiss_Index_reset(self.ptr.as_ptr()) };
        check(code, || "empty the index".into())
    }

    /// For each row of `rows`, the inner product with its nearest coarse centroid (what a search's first
    /// step computes): the measure of how well the trained centroids still fit the data.
    pub(crate) fn nearest_centroid_scores(&self, rows: &[f32]) -> Result<Vec<f32>, AnnError> {
        let Some(ivf) = self.as_ivf() else {
            return Err(AnnError::Faiss {
                operation: "nearest centroid".into(),
                message: "not an IVF index".into(),
            });
        };
        let n = rows.len() / self.dim();
        let mut scores = vec![0.0f32; n];
        let mut lists = vec![-1i64; n];
        // SAFETY: the quantizer is owned by the live IVF index; searching it is a const call with `n`
        // rows of `dim` floats into buffers of `n` slots, all outliving the call.
        let code = unsafe {
            let quantizer = sys::faiss_IndexIVF_quantizer(ivf.as_ptr());
            sys::faiss_Index_search(
                quantizer,
                n as i64,
                rows.as_ptr(),
                1,
                scores.as_mut_ptr(),
                lists.as_mut_ptr(),
            )
        };
        check(code, || format!("assign {n} rows to centroids"))?;
        Ok(scores)
    }

    fn own(
        ptr: *mut sys::FaissIndex,
        operation: impl FnOnce() -> String,
    ) -> Result<RawIndex, AnnError> {
        NonNull::new(ptr)
            .map(|ptr| RawIndex { ptr })
            .ok_or_else(|| AnnError::Faiss {
                operation: operation(),
                message: "FAISS returned no index".into(),
            })
    }

    /// Writes the index in FAISS's own format.
    pub(crate) fn write(&self, path: &Path) -> Result<(), AnnError> {
        let name = c_path(path)?;
        // SAFETY: the index pointer is valid; `name` is NUL-terminated and outlives the call.
        let code = unsafe { sys::faiss_write_index_fname(self.ptr.as_ptr(), name.as_ptr()) };
        check(code, || format!("write {}", path.display()))
    }

    /// The vector dimension.
    pub(crate) fn dim(&self) -> usize {
        // SAFETY: the index pointer is valid.
        unsafe { sys::faiss_Index_d(self.ptr.as_ptr()) as usize }
    }

    /// How many vectors were added.
    pub(crate) fn len(&self) -> usize {
        // SAFETY: the index pointer is valid.
        unsafe { sys::faiss_Index_ntotal(self.ptr.as_ptr()) as usize }
    }

    fn as_ivf(&self) -> Option<NonNull<sys::FaissIndexIVF>> {
        // SAFETY: faiss_IndexIVF_cast is a dynamic_cast on a valid index; it returns null when the index is
        // not an IndexIVF and never takes ownership.
        NonNull::new(unsafe { sys::faiss_IndexIVF_cast(self.ptr.as_ptr()) })
    }

    /// The number of inverted lists, or `None` when the index is not an IVF index.
    pub(crate) fn nlist(&self) -> Option<usize> {
        // SAFETY: `ivf` is the same live object seen through its IndexIVF base.
        self.as_ivf()
            .map(|ivf| unsafe { sys::faiss_IndexIVF_nlist(ivf.as_ptr()) })
    }

    /// Whether the inverted lists hold the vectors themselves (IVF-Flat), so FAISS's scores are exact.
    pub(crate) fn stores_exact_vectors(&self) -> bool {
        // SAFETY: dynamic_cast on a valid index; null when it is not an IndexIVFFlat.
        !unsafe { sys::faiss_IndexIVFFlat_cast(self.ptr.as_ptr()) }.is_null()
    }

    /// Bytes per vector in the inverted lists (the code, without the 8-byte id).
    pub(crate) fn code_size(&self) -> Result<usize, AnnError> {
        let mut size = 0usize;
        // SAFETY: the index pointer is valid and `size` a valid place for the result.
        let code = unsafe { sys::faiss_Index_sa_code_size(self.ptr.as_ptr(), &mut size) };
        check(code, || "read the code size".into())?;
        // An IVF index's standalone code prefixes the list number, in the fewest bytes that hold
        // `nlist - 1` (IndexIVF::coarse_code_size).
        let coarse = match self.nlist() {
            Some(nlist) => {
                let (mut rest, mut bytes) = (nlist.saturating_sub(1), 0);
                while rest > 0 {
                    bytes += 1;
                    rest >>= 8;
                }
                bytes
            }
            None => 0,
        };
        Ok(size.saturating_sub(coarse))
    }

    /// The length of every inverted list.
    pub(crate) fn list_sizes(&self) -> Vec<usize> {
        let Some(ivf) = self.as_ivf() else {
            return Vec::new();
        };
        let nlist = self.nlist().unwrap_or(0);
        (0..nlist)
            // SAFETY: `list` < nlist, the bound FAISS checks against.
            .map(|list| unsafe { sys::faiss_IndexIVF_get_list_size(ivf.as_ptr(), list) })
            .collect()
    }

    /// Trains the coarse quantizer (k-means) and the code encoder on `n` rows of `sample`.
    pub(crate) fn train(&mut self, sample: &[f32]) -> Result<(), AnnError> {
        let n = sample.len() / self.dim();
        // SAFETY: `sample` holds `n * dim` floats and outlives the call.
        let code = unsafe { sys::faiss_Index_train(self.ptr.as_ptr(), n as i64, sample.as_ptr()) };
        check(code, || format!("train on {n} vectors"))
    }

    /// Appends rows; FAISS numbers them `len()..len() + n`.
    pub(crate) fn add(&mut self, rows: &[f32]) -> Result<(), AnnError> {
        let n = rows.len() / self.dim();
        // SAFETY: `rows` holds `n * dim` floats and outlives the call.
        let code = unsafe { sys::faiss_Index_add(self.ptr.as_ptr(), n as i64, rows.as_ptr()) };
        check(code, || format!("add {n} vectors"))
    }

    /// Appends rows numbered `first_id..first_id + n` (the appended lists keep the store's row ids).
    pub(crate) fn add_with_ids(&mut self, rows: &[f32], first_id: u64) -> Result<(), AnnError> {
        let n = rows.len() / self.dim();
        let ids: Vec<i64> = (0..n as u64).map(|i| (first_id + i) as i64).collect();
        // SAFETY: `rows` holds `n * dim` floats and `ids` n ids; both outlive the call.
        let code = unsafe {
            sys::faiss_Index_add_with_ids(self.ptr.as_ptr(), n as i64, rows.as_ptr(), ids.as_ptr())
        };
        check(code, || format!("add {n} vectors from id {first_id}"))
    }

    /// Searches `queries` (row-major, `dim` each) visiting `nprobe` lists per query, writing `k` scores
    /// and ids per query; a missing result has id -1. With `allowed`, a bitmap over ids (bit `id % 8` of
    /// byte `id / 8`), FAISS skips every id outside it while it scans, so a filtered search still returns
    /// `k` results whenever the probed lists hold `k` allowed ones.
    /// `before_scan` sees the chosen lists (-1 = none) before any is read, and may refuse them (the
    /// caller checks their checksums on first use).
    ///
    /// Not `IndexIVF::search`: with mapped lists (`OnDiskInvertedLists`) that starts up to 32 threads per
    /// call that read every byte of every probed list before the search does, and serializes concurrent
    /// searches on one mutex. fiq runs the two halves itself: the coarse quantizer picks the lists for the
    /// whole batch, then `search_preassigned` scans them, a chunk of queries per rayon task, with search
    /// parameters carrying `nprobe` and the id selector (`fiq_ivf_search_preassigned`, since FAISS's C API
    /// passes none), so nothing is written to the shared index.
    pub(crate) fn search_ivf(
        &self,
        queries: &[f32],
        k: usize,
        nprobe: usize,
        allowed: Option<&[u8]>,
        scores: &mut [f32],
        ids: &mut [i64],
        before_scan: &(dyn Fn(&[i64]) -> Result<(), AnnError> + Sync),
    ) -> Result<(), AnnError> {
        use rayon::prelude::*;
        let dim = self.dim();
        let n = queries.len() / dim;
        debug_assert_eq!(scores.len(), n * k);
        debug_assert_eq!(ids.len(), n * k);
        let (Some(ivf), Some(nlist)) = (self.as_ivf(), self.nlist()) else {
            return Err(AnnError::Faiss {
                operation: "search".into(),
                message: "not an IVF index".into(),
            });
        };
        let nprobe = nprobe.clamp(1, nlist);
        let operation = || format!("search {n} queries (k = {k}, nprobe = {nprobe})");
        let params = SearchParams::new(nprobe, allowed, &operation)?;

        let mut lists = vec![-1i64; n * nprobe];
        let mut list_scores = vec![0.0f32; n * nprobe];
        // SAFETY: the quantizer is owned by the live IVF index; it is searched (a const call) with `n`
        // queries of `dim` floats into buffers of n * nprobe slots, all outliving the call.
        let code = unsafe {
            let quantizer = sys::faiss_IndexIVF_quantizer(ivf.as_ptr());
            sys::faiss_Index_search(
                quantizer,
                n as i64,
                queries.as_ptr(),
                nprobe as i64,
                list_scores.as_mut_ptr(),
                lists.as_mut_ptr(),
            )
        };
        check(code, operation)?;
        // The caller checks the lists about to be scanned (their checksums, on first use).
        before_scan(&lists)?;

        let per_task = n.div_ceil(4 * rayon::current_num_threads()).max(1);
        let ivf_ptr = ivf.as_ptr() as usize;
        let params_ptr = params.ptr.as_ptr() as usize;
        queries
            .par_chunks(per_task * dim)
            .zip(lists.par_chunks(per_task * nprobe))
            .zip(list_scores.par_chunks(per_task * nprobe))
            .zip(scores.par_chunks_mut(per_task * k))
            .zip(ids.par_chunks_mut(per_task * k))
            .try_for_each(|((((chunk, lists), list_scores), scores), ids)| {
                let m = chunk.len() / dim;
                // SAFETY: `ivf_ptr` is the live IVF index and `params_ptr` its search parameters (with
                // the selector over `allowed`), both alive for this whole call; search_preassigned is
                // const and reads the parameters only. `chunk` holds m * dim floats, `lists` and
                // `list_scores` m * nprobe entries (the parameters' nprobe), `scores`/`ids` m * k slots;
                // list numbers come from the quantizer (< nlist) or are -1, which FAISS skips.
                let code = unsafe {
                    fiq_ivf_search_preassigned(
                        ivf_ptr as *const c_void,
                        m as i64,
                        chunk.as_ptr(),
                        k as i64,
                        lists.as_ptr(),
                        list_scores.as_ptr(),
                        scores.as_mut_ptr(),
                        ids.as_mut_ptr(),
                        params_ptr as *const c_void,
                    )
                };
                check(code, operation)
            })
    }
}

/// Search parameters for one call: `nprobe` and, for a filtered search, an id selector over a bitmap
/// the caller keeps alive for as long as the parameters live (the selector does not copy it).
struct SearchParams<'a> {
    ptr: NonNull<sys::FaissSearchParametersIVF>,
    selector: Option<NonNull<sys::FaissIDSelectorBitmap>>,
    _bitmap: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> SearchParams<'a> {
    fn new(
        nprobe: usize,
        allowed: Option<&'a [u8]>,
        operation: &impl Fn() -> String,
    ) -> Result<SearchParams<'a>, AnnError> {
        let mut selector: *mut sys::FaissIDSelectorBitmap = ptr::null_mut();
        if let Some(bitmap) = allowed {
            // SAFETY: `selector` is a valid place for the result; the bitmap outlives the selector
            // (both are tied to 'a, and the selector is freed in Drop before the borrow ends).
            let code = unsafe {
                sys::faiss_IDSelectorBitmap_new(&mut selector, bitmap.len(), bitmap.as_ptr())
            };
            check(code, operation)?;
        }
        let selector = NonNull::new(selector);
        let mut params: *mut sys::FaissSearchParametersIVF = ptr::null_mut();
        // SAFETY: `params` is a valid place for the result; the selector (or null: no filter) is a live
        // object that the parameters reference but do not own; it is freed after them in Drop.
        let code = unsafe {
            sys::faiss_SearchParametersIVF_new_with(
                &mut params,
                selector.map_or(ptr::null_mut(), |s| s.as_ptr().cast()),
                nprobe,
                0,
            )
        };
        let made = check(code, operation).and_then(|()| {
            NonNull::new(params).ok_or_else(|| AnnError::Faiss {
                operation: operation(),
                message: "FAISS returned no search parameters".into(),
            })
        });
        match made {
            Ok(ptr) => Ok(SearchParams {
                ptr,
                selector,
                _bitmap: std::marker::PhantomData,
            }),
            Err(e) => {
                if let Some(s) = selector {
                    // SAFETY: made above by faiss_IDSelectorBitmap_new, owned here alone.
                    unsafe { sys::faiss_IDSelectorBitmap_free(s.as_ptr()) }
                }
                Err(e)
            }
        }
    }
}

impl Drop for SearchParams<'_> {
    fn drop(&mut self) {
        // SAFETY: both were made by their FAISS constructors in `new` and are owned here alone; the
        // parameters, which point at the selector, go first.
        unsafe {
            sys::faiss_SearchParametersIVF_free(self.ptr.as_ptr());
            if let Some(selector) = self.selector {
                sys::faiss_IDSelectorBitmap_free(selector.as_ptr());
            }
        }
    }
}

/// FAISS on a CUDA device: k-means training and adding run on the GPU, the trained index comes back to
/// the CPU for writing and serving (searches stay on the CPU, next to the memory-mapped store).
///
/// Built only with the `faiss-gpu` feature, which needs the CUDA toolkit at build time
/// (`tools/device/cuda-toolkit.sh` assembles one from PyPI wheels; `tools/device/bundle.sh faiss-gpu`
/// builds and packs it). It compiles and links; it has not yet run on a GPU (BENCHMARKS.md says so
/// until a device run measures it).
#[cfg(feature = "faiss-gpu")]
pub(crate) mod gpu {
    use super::*;

    /// cuBLAS handle, streams and scratch memory for one process; must outlive every GPU index.
    pub(crate) struct GpuResources {
        ptr: NonNull<sys::FaissStandardGpuResources>,
    }

    impl GpuResources {
        pub(crate) fn new() -> Result<GpuResources, AnnError> {
            let mut out = ptr::null_mut();
            // SAFETY: `out` is a valid place for the result.
            let code = unsafe { sys::faiss_StandardGpuResources_new(&mut out) };
            check(code, || "initialize CUDA resources".into())?;
            NonNull::new(out)
                .map(|ptr| GpuResources { ptr })
                .ok_or_else(|| AnnError::Faiss {
                    operation: "initialize CUDA resources".into(),
                    message: "FAISS returned none".into(),
                })
        }
    }

    impl Drop for GpuResources {
        fn drop(&mut self) {
            // SAFETY: allocated by faiss_StandardGpuResources_new, owned here alone; every GPU index made
            // with it is dropped first (`GpuIndex` borrows it).
            unsafe { sys::faiss_StandardGpuResources_free(self.ptr.as_ptr()) }
        }
    }

    /// A copy of an index on a device, tied to the resources it was made with.
    pub(crate) struct GpuIndex<'r> {
        index: RawIndex,
        _resources: &'r GpuResources,
    }

    /// CUDA devices visible to FAISS.
    pub(crate) fn device_count() -> Result<usize, AnnError> {
        let mut n = 0;
        // SAFETY: `n` is a valid place for the result.
        let code = unsafe { sys::faiss_get_num_gpus(&mut n) };
        check(code, || "count CUDA devices".into())?;
        Ok(n.max(0) as usize)
    }

    impl RawIndex {
        /// Copies this (untrained or trained) index to `device`.
        pub(crate) fn to_gpu<'r>(
            &self,
            resources: &'r GpuResources,
            device: usize,
        ) -> Result<GpuIndex<'r>, AnnError> {
            let mut out = ptr::null_mut();
            // SAFETY: both pointers are valid; FAISS copies the index and does not keep `self`.
            let code = unsafe {
                sys::faiss_index_cpu_to_gpu(
                    resources.ptr.as_ptr(),
                    device as c_int,
                    self.ptr.as_ptr(),
                    &mut out,
                )
            };
            check(code, || format!("copy the index to CUDA device {device}"))?;
            let index = RawIndex::own(out, || format!("copy the index to CUDA device {device}"))?;
            Ok(GpuIndex {
                index,
                _resources: resources,
            })
        }
    }

    impl GpuIndex<'_> {
        pub(crate) fn train(&mut self, sample: &[f32]) -> Result<(), AnnError> {
            self.index.train(sample)
        }

        pub(crate) fn add(&mut self, rows: &[f32]) -> Result<(), AnnError> {
            self.index.add(rows)
        }

        /// Copies the index back to host memory.
        pub(crate) fn to_cpu(&self) -> Result<RawIndex, AnnError> {
            let mut out = ptr::null_mut();
            // SAFETY: the GPU index pointer is valid; FAISS makes an independent CPU copy.
            let code = unsafe { sys::faiss_index_gpu_to_cpu(self.index.ptr.as_ptr(), &mut out) };
            check(code, || "copy the index back from the GPU".into())?;
            RawIndex::own(out, || "copy the index back from the GPU".into())
        }
    }
}
