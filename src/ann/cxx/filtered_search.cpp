// The one FAISS call fiq needs that FAISS's C API lacks: `IndexIVF::search_preassigned` with search
// parameters. The C API's `faiss_IndexIVF_search_preassigned` passes none, so it can neither restrict a
// search to an id set (an `IDSelector`) nor take `nprobe` per call. Parameters and selectors are made
// and freed through the C API (`faiss_SearchParametersIVF_new_with`, `faiss_IDSelectorBitmap_new`); this
// file only forwards them. Errors are reported the C API's way, so `faiss_get_last_error` reads them.

#include <exception>

#include <c_api/error_impl.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/FaissException.h>

extern "C" int fiq_ivf_search_preassigned(
        const void* index,
        int64_t n,
        const float* x,
        int64_t k,
        const int64_t* assign,
        const float* centroid_dis,
        float* distances,
        int64_t* labels,
        const void* params) {
    try {
        auto ivf = reinterpret_cast<const faiss::IndexIVF*>(index);
        auto search_params =
                reinterpret_cast<const faiss::SearchParametersIVF*>(params);
        ivf->search_preassigned(
                n, x, k, assign, centroid_dis, distances, labels, false,
                search_params);
    } catch (faiss::FaissException& e) {
        faiss_last_exception = std::make_exception_ptr(e);
        return -2;
    } catch (std::exception& e) {
        faiss_last_exception = std::make_exception_ptr(e);
        return -4;
    } catch (...) {
        faiss_last_exception = std::make_exception_ptr(
                std::runtime_error("unknown exception in search_preassigned"));
        return -1;
    }
    return 0;
}
