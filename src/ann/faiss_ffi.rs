//! The only module that touches FAISS: a handful of calls into its C API, each wrapped so that no FAISS
//! type, pointer or error code leaves this file.
//!
//! The safe `faiss` crate covers building and searching, but not three things fiq needs: reading an index
//! with `IO_FLAG_MMAP_IFC` (the crate's `IoFlags::MEM_MAP` passes 0x1, which FAISS 1.12's reader ignores),
//! per-call `nprobe` through `SearchParametersIVF` (so one shared index serves concurrent searches with
//! different settings), and the list sizes. So fiq calls `faiss_sys` directly, here only.

use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use std::path::Path;
use std::ptr::{self, NonNull};

use faiss_sys as sys;

use super::AnnError;

/// `faiss::IO_FLAG_MMAP_IFC` (index_io.h, FAISS >= 1.11): read through a memory map and leave
/// `IndexFlatCodes` codes and `ArrayInvertedLists` codes/ids as views into it instead of copying.
const IO_FLAG_MMAP_IFC: c_int = 1 << 9;

/// An owned FAISS index.
pub(crate) struct RawIndex {
    ptr: NonNull<sys::FaissIndex>,
}

// SAFETY: the index is a plain heap object with no thread affinity. After building, fiq only calls
// FAISS's const search functions on it (per-call parameters go through SearchParametersIVF, never through
// the index's mutable `nprobe` field), which FAISS documents as safe to call from several threads at once.
// Mutation (`train`, `add`) takes `&mut self`, so the borrow checker keeps it exclusive.
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

    /// Reads an index written by [`RawIndex::write`], mapping the file instead of reading it.
    ///
    /// With `IO_FLAG_MMAP_IFC`, FAISS maps the whole file `MAP_SHARED, PROT_READ` and keeps the coarse
    /// centroids and the inverted lists (codes and ids) as views into the map; only headers and the list
    /// sizes are copied. The map lives as long as the index.
    pub(crate) fn read_mapped(path: &Path) -> Result<RawIndex, AnnError> {
        let name = c_path(path)?;
        let mut out: *mut sys::FaissIndex = ptr::null_mut();
        // SAFETY: `name` is NUL-terminated and outlives the call; `out` is a valid place for the result.
        // FAISS bounds-checks every section against the mapped length and reports a short file as an error.
        let code =
            unsafe { sys::faiss_read_index_fname(name.as_ptr(), IO_FLAG_MMAP_IFC, &mut out) };
        check(code, || format!("read {}", path.display()))?;
        Self::own(out, || format!("read {}", path.display()))
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

    /// Searches `queries` (row-major, `dim` each) visiting `nprobe` lists per query, writing `k` scores
    /// and ids per query; a missing result has id -1.
    pub(crate) fn search_ivf(
        &self,
        queries: &[f32],
        k: usize,
        nprobe: usize,
        scores: &mut [f32],
        ids: &mut [i64],
    ) -> Result<(), AnnError> {
        let n = queries.len() / self.dim();
        debug_assert_eq!(scores.len(), n * k);
        debug_assert_eq!(ids.len(), n * k);
        let params = IvfSearchParams::new(nprobe)?;
        // SAFETY: `queries` holds n*dim floats, `scores`/`ids` hold n*k slots, all outliving the call. A
        // SearchParametersIVF is-a SearchParameters (single inheritance, same address), which is how the
        // C API expects the pointer to be passed; search only reads it.
        let code = unsafe {
            sys::faiss_Index_search_with_params(
                self.ptr.as_ptr(),
                n as i64,
                queries.as_ptr(),
                k as i64,
                params.ptr.as_ptr() as *const sys::FaissSearchParameters,
                scores.as_mut_ptr(),
                ids.as_mut_ptr(),
            )
        };
        check(code, || {
            format!("search {n} queries (k = {k}, nprobe = {nprobe})")
        })
    }
}

/// Per-call IVF search parameters, freed on drop.
struct IvfSearchParams {
    ptr: NonNull<sys::FaissSearchParametersIVF>,
}

impl IvfSearchParams {
    fn new(nprobe: usize) -> Result<IvfSearchParams, AnnError> {
        let mut out: *mut sys::FaissSearchParametersIVF = ptr::null_mut();
        // SAFETY: `out` is a valid place for the result; no selector (null) and max_codes 0 (no limit).
        let code = unsafe {
            sys::faiss_SearchParametersIVF_new_with(&mut out, ptr::null_mut(), nprobe, 0)
        };
        check(code, || {
            format!("make search parameters (nprobe = {nprobe})")
        })?;
        NonNull::new(out)
            .map(|ptr| IvfSearchParams { ptr })
            .ok_or_else(|| AnnError::Faiss {
                operation: "make search parameters".into(),
                message: "FAISS returned none".into(),
            })
    }
}

impl Drop for IvfSearchParams {
    fn drop(&mut self) {
        // SAFETY: allocated by faiss_SearchParametersIVF_new_with, owned here alone, freed once.
        unsafe { sys::faiss_SearchParametersIVF_free(self.ptr.as_ptr()) }
    }
}

/// FAISS on a CUDA device: k-means training and adding run on the GPU, the trained index comes back to
/// the CPU for writing and serving (searches stay on the CPU, next to the memory-mapped store).
///
/// Built only with the `faiss-gpu` feature, which needs the CUDA toolkit at build time. Not compiled or
/// run on fiq's development machine (no CUDA there); see `tools/device-check-faiss.sh`.
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
