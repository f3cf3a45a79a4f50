/*
 * The subset of the Aeron C client API (aeronc.h, Aeron 1.53, Apache-2.0) that lob uses, declared as a
 * table of function pointers.
 *
 * pyaeron's wheel ships the Aeron C client inside its extension module but no headers and no linkable
 * library, so lob does not link against Aeron: lob.transport.aeron opens pyaeron's shared object with
 * dlopen(RTLD_NOW | RTLD_NOLOAD), looks every symbol below up with dlsym and fills one lob_aeron_api_t
 * that every other transport module uses. The structs are copied field for field from aeronc.h: their
 * layout is part of the ABI, which is why the loader refuses any Aeron version other than
 * LOB_AERON_VERSION_MAJOR.LOB_AERON_VERSION_MINOR.
 */
#ifndef LOB_TRANSPORT_AERONC_H
#define LOB_TRANSPORT_AERONC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOB_AERON_VERSION_MAJOR 1
#define LOB_AERON_VERSION_MINOR 53

/* Return codes of offer / try_claim (negative stream positions). */
#define AERON_PUBLICATION_NOT_CONNECTED (-1L)
#define AERON_PUBLICATION_BACK_PRESSURED (-2L)
#define AERON_PUBLICATION_ADMIN_ACTION (-3L)
#define AERON_PUBLICATION_CLOSED (-4L)
#define AERON_PUBLICATION_MAX_POSITION_EXCEEDED (-5L)
#define AERON_PUBLICATION_ERROR (-6L)

#define AERON_CLIENT_ERROR_DRIVER_TIMEOUT (1000)
#define AERON_NULL_VALUE (-1)
#define AERON_COUNTER_SENDER_POSITION_TYPE_ID (2)

/* Data frame flags: a message that fits one fragment carries both. */
#define AERON_DATA_HEADER_BEGIN_FLAG ((uint8_t)0x80)
#define AERON_DATA_HEADER_END_FLAG ((uint8_t)0x40)

typedef struct aeron_context_stct aeron_context_t;
typedef struct aeron_stct aeron_t;
typedef struct aeron_exclusive_publication_stct aeron_exclusive_publication_t;
typedef struct aeron_header_stct aeron_header_t;
typedef struct aeron_subscription_stct aeron_subscription_t;
typedef struct aeron_image_stct aeron_image_t;
typedef struct aeron_counters_reader_stct aeron_counters_reader_t;
typedef struct aeron_client_registering_resource_stct aeron_async_add_exclusive_publication_t;
typedef struct aeron_client_registering_resource_stct aeron_async_add_subscription_t;
typedef struct aeron_fragment_assembler_stct aeron_fragment_assembler_t;

#pragma pack(push)
#pragma pack(4)
typedef struct aeron_header_values_frame_stct
{
    int32_t frame_length;
    int8_t version;
    uint8_t flags;
    int16_t type;
    int32_t term_offset;
    int32_t session_id;
    int32_t stream_id;
    int32_t term_id;
    int64_t reserved_value;
}
aeron_header_values_frame_t;

typedef struct aeron_header_values_stct
{
    aeron_header_values_frame_t frame;
    int32_t initial_term_id;
    size_t position_bits_to_shift;
}
aeron_header_values_t;
#pragma pack(pop)

typedef struct aeron_buffer_claim_stct
{
    uint8_t *frame_header;
    uint8_t *data;
    size_t length;
}
aeron_buffer_claim_t;

typedef struct aeron_publication_constants_stct
{
    const char *channel;
    int64_t original_registration_id;
    int64_t registration_id;
    int64_t max_possible_position;
    size_t position_bits_to_shift;
    size_t term_buffer_length;
    size_t max_message_length;
    size_t max_payload_length;
    int32_t stream_id;
    int32_t session_id;
    int32_t initial_term_id;
    int32_t publication_limit_counter_id;
    int32_t channel_status_indicator_id;
}
aeron_publication_constants_t;

typedef struct aeron_image_constants_stct
{
    aeron_subscription_t *subscription;
    const char *source_identity;
    int64_t correlation_id;
    int64_t join_position;
    size_t position_bits_to_shift;
    size_t term_buffer_length;
    size_t mtu_length;
    int32_t session_id;
    int32_t initial_term_id;
    int32_t subscriber_position_id;
}
aeron_image_constants_t;

typedef void (*aeron_notification_t)(void *clientd);
typedef void (*aeron_fragment_handler_t)(void *clientd, const uint8_t *buffer, size_t length, aeron_header_t *header);
typedef void (*aeron_on_available_image_t)(void *clientd, aeron_subscription_t *subscription, aeron_image_t *image);
typedef void (*aeron_on_unavailable_image_t)(void *clientd, aeron_subscription_t *subscription, aeron_image_t *image);
typedef int64_t (*aeron_reserved_value_supplier_t)(void *clientd, uint8_t *buffer, size_t frame_length);
typedef void (*aeron_log_func_t)(const char *);

/*
 * X(return type, name without the aeron_ prefix, parameter list). One line per symbol: the struct field,
 * the symbol name the loader looks up and its offset in the table all come from this list.
 */
#define LOB_AERON_SYMBOLS(X) \
    X(const char *, version_full, (void)) \
    X(int, version_major, (void)) \
    X(int, version_minor, (void)) \
    X(int, version_patch, (void)) \
    X(int, errcode, (void)) \
    X(const char *, errmsg, (void)) \
    X(int64_t, nano_clock, (void)) \
    X(int64_t, epoch_clock, (void)) \
    X(bool, is_driver_active, (const char *dirname, int64_t timeout_ms, aeron_log_func_t log_func)) \
    X(int, context_init, (aeron_context_t **context)) \
    X(int, context_close, (aeron_context_t *context)) \
    X(int, context_set_dir, (aeron_context_t *context, const char *value)) \
    X(const char *, context_get_dir, (aeron_context_t *context)) \
    X(int, context_set_driver_timeout_ms, (aeron_context_t *context, uint64_t value)) \
    X(int, context_set_client_name, (aeron_context_t *context, const char *value)) \
    X(int, init, (aeron_t **client, aeron_context_t *context)) \
    X(int, start, (aeron_t *client)) \
    X(int, close, (aeron_t *client)) \
    X(bool, is_closed, (aeron_t *client)) \
    X(int64_t, client_id, (aeron_t *client)) \
    X(aeron_counters_reader_t *, counters_reader, (aeron_t *client)) \
    X(int32_t, counters_reader_find_by_type_id_and_registration_id, \
      (aeron_counters_reader_t *reader, int32_t type_id, int64_t registration_id)) \
    X(int64_t *, counters_reader_addr, (aeron_counters_reader_t *reader, int32_t counter_id)) \
    X(int, async_add_subscription, \
      (aeron_async_add_subscription_t **async, aeron_t *client, const char *uri, int32_t stream_id, \
       aeron_on_available_image_t on_available_image_handler, void *on_available_image_clientd, \
       aeron_on_unavailable_image_t on_unavailable_image_handler, void *on_unavailable_image_clientd)) \
    X(int, async_add_subscription_poll, (aeron_subscription_t **subscription, aeron_async_add_subscription_t *async)) \
    X(int, async_add_exclusive_publication, \
      (aeron_async_add_exclusive_publication_t **async, aeron_t *client, const char *uri, int32_t stream_id)) \
    X(int, async_add_exclusive_publication_poll, \
      (aeron_exclusive_publication_t **publication, aeron_async_add_exclusive_publication_t *async)) \
    X(int, subscription_poll, \
      (aeron_subscription_t *subscription, aeron_fragment_handler_t handler, void *clientd, size_t fragment_limit)) \
    X(bool, subscription_is_connected, (aeron_subscription_t *subscription)) \
    X(int, subscription_image_count, (aeron_subscription_t *subscription)) \
    X(bool, subscription_is_closed, (aeron_subscription_t *subscription)) \
    X(int64_t, subscription_channel_status, (aeron_subscription_t *subscription)) \
    X(int, subscription_close, \
      (aeron_subscription_t *subscription, aeron_notification_t on_close_complete, void *on_close_complete_clientd)) \
    X(int, fragment_assembler_create, \
      (aeron_fragment_assembler_t **assembler, aeron_fragment_handler_t delegate, void *delegate_clientd)) \
    X(int, fragment_assembler_delete, (aeron_fragment_assembler_t *assembler)) \
    X(void, fragment_assembler_handler, \
      (void *clientd, const uint8_t *buffer, size_t length, aeron_header_t *header)) \
    X(int, image_constants, (aeron_image_t *image, aeron_image_constants_t *constants)) \
    X(int, header_values, (aeron_header_t *header, aeron_header_values_t *values)) \
    X(int64_t, header_position, (aeron_header_t *header)) \
    X(int64_t, exclusive_publication_offer, \
      (aeron_exclusive_publication_t *publication, const uint8_t *buffer, size_t length, \
       aeron_reserved_value_supplier_t reserved_value_supplier, void *clientd)) \
    X(int64_t, exclusive_publication_try_claim, \
      (aeron_exclusive_publication_t *publication, size_t length, aeron_buffer_claim_t *buffer_claim)) \
    X(int, buffer_claim_commit, (aeron_buffer_claim_t *buffer_claim)) \
    X(int, buffer_claim_abort, (aeron_buffer_claim_t *buffer_claim)) \
    X(bool, exclusive_publication_is_connected, (aeron_exclusive_publication_t *publication)) \
    X(bool, exclusive_publication_is_closed, (aeron_exclusive_publication_t *publication)) \
    X(int64_t, exclusive_publication_position, (aeron_exclusive_publication_t *publication)) \
    X(int64_t, exclusive_publication_position_limit, (aeron_exclusive_publication_t *publication)) \
    X(int64_t, exclusive_publication_channel_status, (aeron_exclusive_publication_t *publication)) \
    X(int, exclusive_publication_constants, \
      (aeron_exclusive_publication_t *publication, aeron_publication_constants_t *constants)) \
    X(int, exclusive_publication_close, \
      (aeron_exclusive_publication_t *publication, aeron_notification_t on_close_complete, \
       void *on_close_complete_clientd))

#define LOB_AERON_FIELD(ret, name, params) ret (*name) params;
typedef struct lob_aeron_api_stct
{
    LOB_AERON_SYMBOLS(LOB_AERON_FIELD)
}
lob_aeron_api_t;
#undef LOB_AERON_FIELD

typedef struct lob_aeron_symbol_stct
{
    const char *name;
    size_t offset;
}
lob_aeron_symbol_t;

#define LOB_AERON_ENTRY(ret, name, params) { "aeron_" #name, offsetof(lob_aeron_api_t, name) },
static const lob_aeron_symbol_t lob_aeron_symbols[] = { LOB_AERON_SYMBOLS(LOB_AERON_ENTRY) };
#undef LOB_AERON_ENTRY
#define LOB_AERON_SYMBOL_COUNT (sizeof(lob_aeron_symbols) / sizeof(lob_aeron_symbols[0]))

/* Writes a resolved symbol into the table: Cython cannot express "store void* at byte offset". */
static inline void lob_aeron_api_set(lob_aeron_api_t *api, size_t offset, void *fn)
{
    *(void **)((char *)api + offset) = fn;
}

#endif
