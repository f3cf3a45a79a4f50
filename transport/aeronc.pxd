# The Aeron C client API as lob uses it: Cython's view of transport/aeronc.h (the C compiler checks
# these declarations against that header). Functions are fields of lob_aeron_api_t, resolved from
# pyaeron's shared object at import by lob.transport.aeron; call them as `api.subscription_poll(...)`.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t

cdef extern from "transport/aeronc.h" nogil:
    enum:
        LOB_AERON_VERSION_MAJOR
        LOB_AERON_VERSION_MINOR
        AERON_CLIENT_ERROR_DRIVER_TIMEOUT
        AERON_NULL_VALUE
        AERON_COUNTER_SENDER_POSITION_TYPE_ID
    const int64_t AERON_PUBLICATION_NOT_CONNECTED
    const int64_t AERON_PUBLICATION_BACK_PRESSURED
    const int64_t AERON_PUBLICATION_ADMIN_ACTION
    const int64_t AERON_PUBLICATION_CLOSED
    const int64_t AERON_PUBLICATION_MAX_POSITION_EXCEEDED
    const int64_t AERON_PUBLICATION_ERROR
    const uint8_t AERON_DATA_HEADER_BEGIN_FLAG
    const uint8_t AERON_DATA_HEADER_END_FLAG

    ctypedef struct aeron_context_t
    ctypedef struct aeron_t
    ctypedef struct aeron_exclusive_publication_t
    ctypedef struct aeron_header_t
    ctypedef struct aeron_subscription_t
    ctypedef struct aeron_image_t
    ctypedef struct aeron_counters_reader_t
    ctypedef struct aeron_async_add_exclusive_publication_t
    ctypedef struct aeron_async_add_subscription_t
    ctypedef struct aeron_fragment_assembler_t

    ctypedef struct aeron_header_values_frame_t:
        int32_t frame_length
        int8_t version
        uint8_t flags
        int16_t type
        int32_t term_offset
        int32_t session_id
        int32_t stream_id
        int32_t term_id
        int64_t reserved_value

    ctypedef struct aeron_header_values_t:
        aeron_header_values_frame_t frame
        int32_t initial_term_id
        size_t position_bits_to_shift

    ctypedef struct aeron_buffer_claim_t:
        uint8_t* frame_header
        uint8_t* data
        size_t length

    ctypedef struct aeron_publication_constants_t:
        const char* channel
        int64_t original_registration_id
        int64_t registration_id
        int64_t max_possible_position
        size_t position_bits_to_shift
        size_t term_buffer_length
        size_t max_message_length
        size_t max_payload_length
        int32_t stream_id
        int32_t session_id
        int32_t initial_term_id
        int32_t publication_limit_counter_id
        int32_t channel_status_indicator_id

    ctypedef struct aeron_image_constants_t:
        aeron_subscription_t* subscription
        const char* source_identity
        int64_t correlation_id
        int64_t join_position
        size_t position_bits_to_shift
        size_t term_buffer_length
        size_t mtu_length
        int32_t session_id
        int32_t initial_term_id
        int32_t subscriber_position_id

    ctypedef void (*aeron_notification_t)(void* clientd) noexcept nogil
    ctypedef void (*aeron_fragment_handler_t)(void* clientd, const uint8_t* buffer, size_t length,
                                              aeron_header_t* header) noexcept nogil
    ctypedef void (*aeron_on_available_image_t)(void* clientd, aeron_subscription_t* subscription,
                                                aeron_image_t* image) noexcept nogil
    ctypedef void (*aeron_on_unavailable_image_t)(void* clientd, aeron_subscription_t* subscription,
                                                  aeron_image_t* image) noexcept nogil
    ctypedef int64_t (*aeron_reserved_value_supplier_t)(void* clientd, uint8_t* buffer,
                                                        size_t frame_length) noexcept nogil
    ctypedef void (*aeron_log_func_t)(const char*) noexcept nogil

    ctypedef struct lob_aeron_api_t:
        const char* (*version_full)() noexcept nogil
        int (*version_major)() noexcept nogil
        int (*version_minor)() noexcept nogil
        int (*version_patch)() noexcept nogil
        int (*errcode)() noexcept nogil
        const char* (*errmsg)() noexcept nogil
        int64_t (*nano_clock)() noexcept nogil
        int64_t (*epoch_clock)() noexcept nogil
        bint (*is_driver_active)(const char* dirname, int64_t timeout_ms, aeron_log_func_t log_func) noexcept nogil
        int (*context_init)(aeron_context_t** context) noexcept nogil
        int (*context_close)(aeron_context_t* context) noexcept nogil
        int (*context_set_dir)(aeron_context_t* context, const char* value) noexcept nogil
        const char* (*context_get_dir)(aeron_context_t* context) noexcept nogil
        int (*context_set_driver_timeout_ms)(aeron_context_t* context, uint64_t value) noexcept nogil
        int (*context_set_client_name)(aeron_context_t* context, const char* value) noexcept nogil
        int (*init)(aeron_t** client, aeron_context_t* context) noexcept nogil
        int (*start)(aeron_t* client) noexcept nogil
        int (*close)(aeron_t* client) noexcept nogil
        bint (*is_closed)(aeron_t* client) noexcept nogil
        int64_t (*client_id)(aeron_t* client) noexcept nogil
        aeron_counters_reader_t* (*counters_reader)(aeron_t* client) noexcept nogil
        int32_t (*counters_reader_find_by_type_id_and_registration_id)(
            aeron_counters_reader_t* reader, int32_t type_id, int64_t registration_id) noexcept nogil
        int64_t* (*counters_reader_addr)(aeron_counters_reader_t* reader, int32_t counter_id) noexcept nogil
        int (*async_add_subscription)(
            aeron_async_add_subscription_t** async_, aeron_t* client, const char* uri, int32_t stream_id,
            aeron_on_available_image_t on_available_image_handler, void* on_available_image_clientd,
            aeron_on_unavailable_image_t on_unavailable_image_handler,
            void* on_unavailable_image_clientd) noexcept nogil
        int (*async_add_subscription_poll)(aeron_subscription_t** subscription,
                                           aeron_async_add_subscription_t* async_) noexcept nogil
        int (*async_add_exclusive_publication)(
            aeron_async_add_exclusive_publication_t** async_, aeron_t* client, const char* uri,
            int32_t stream_id) noexcept nogil
        int (*async_add_exclusive_publication_poll)(
            aeron_exclusive_publication_t** publication,
            aeron_async_add_exclusive_publication_t* async_) noexcept nogil
        int (*subscription_poll)(aeron_subscription_t* subscription, aeron_fragment_handler_t handler,
                                 void* clientd, size_t fragment_limit) noexcept nogil
        bint (*subscription_is_connected)(aeron_subscription_t* subscription) noexcept nogil
        int (*subscription_image_count)(aeron_subscription_t* subscription) noexcept nogil
        bint (*subscription_is_closed)(aeron_subscription_t* subscription) noexcept nogil
        int64_t (*subscription_channel_status)(aeron_subscription_t* subscription) noexcept nogil
        int (*subscription_close)(aeron_subscription_t* subscription, aeron_notification_t on_close_complete,
                                  void* on_close_complete_clientd) noexcept nogil
        int (*fragment_assembler_create)(aeron_fragment_assembler_t** assembler,
                                         aeron_fragment_handler_t delegate, void* delegate_clientd) noexcept nogil
        int (*fragment_assembler_delete)(aeron_fragment_assembler_t* assembler) noexcept nogil
        void (*fragment_assembler_handler)(void* clientd, const uint8_t* buffer, size_t length,
                                           aeron_header_t* header) noexcept nogil
        int (*image_constants)(aeron_image_t* image, aeron_image_constants_t* constants) noexcept nogil
        int (*header_values)(aeron_header_t* header, aeron_header_values_t* values) noexcept nogil
        int64_t (*header_position)(aeron_header_t* header) noexcept nogil
        int64_t (*exclusive_publication_offer)(
            aeron_exclusive_publication_t* publication, const uint8_t* buffer, size_t length,
            aeron_reserved_value_supplier_t reserved_value_supplier, void* clientd) noexcept nogil
        int64_t (*exclusive_publication_try_claim)(aeron_exclusive_publication_t* publication, size_t length,
                                                   aeron_buffer_claim_t* buffer_claim) noexcept nogil
        int (*buffer_claim_commit)(aeron_buffer_claim_t* buffer_claim) noexcept nogil
        int (*buffer_claim_abort)(aeron_buffer_claim_t* buffer_claim) noexcept nogil
        bint (*exclusive_publication_is_connected)(aeron_exclusive_publication_t* publication) noexcept nogil
        bint (*exclusive_publication_is_closed)(aeron_exclusive_publication_t* publication) noexcept nogil
        int64_t (*exclusive_publication_position)(aeron_exclusive_publication_t* publication) noexcept nogil
        int64_t (*exclusive_publication_position_limit)(aeron_exclusive_publication_t* publication) noexcept nogil
        int64_t (*exclusive_publication_channel_status)(aeron_exclusive_publication_t* publication) noexcept nogil
        int (*exclusive_publication_constants)(aeron_exclusive_publication_t* publication,
                                               aeron_publication_constants_t* constants) noexcept nogil
        int (*exclusive_publication_close)(aeron_exclusive_publication_t* publication,
                                           aeron_notification_t on_close_complete,
                                           void* on_close_complete_clientd) noexcept nogil

    ctypedef struct lob_aeron_symbol_t:
        const char* name
        size_t offset

    const lob_aeron_symbol_t* lob_aeron_symbols
    const size_t LOB_AERON_SYMBOL_COUNT
    void lob_aeron_api_set(lob_aeron_api_t* api, size_t offset, void* fn)
