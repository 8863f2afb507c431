package handlers

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

func (s *Server) createTransaction(c echo.Context) error {
	var in models.TransactionInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, outcome, err := s.db.RecordTransaction(c.Request().Context(), principal(c), in)
	if err != nil {
		return err
	}
	if outcome == models.Replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
		return c.JSON(http.StatusOK, t)
	}
	return c.JSON(http.StatusCreated, t)
}

type batchInput struct {
	Transactions []json.RawMessage `json:"transactions"`
}

type batchOutput struct {
	Created  int           `json:"created"`
	Replayed int           `json:"replayed"`
	Failed   int           `json:"failed"`
	Results  []batchResult `json:"results"`
}

// batchResult is models.BatchResult with its error in the contract's JSON shape.
type batchResult struct {
	Index       int                 `json:"index"`
	ID          string              `json:"id,omitempty"`
	Status      int                 `json:"status"`
	Transaction *models.Transaction `json:"transaction,omitempty"`
	Error       *errorDetail        `json:"error,omitempty"`
}

// createTransactionBatch records up to models.MaxBatch transactions. Each item is decoded on its
// own so that one item of the wrong shape fails alone, with its own error.
func (s *Server) createTransactionBatch(c echo.Context) error {
	items, decodeErrs, err := decodeBatch(c)
	if err != nil {
		return err
	}
	results, err := s.db.RecordTransactions(c.Request().Context(), principal(c), items)
	if err != nil {
		return err
	}
	out := batchOutput{Results: make([]batchResult, len(results))}
	for i := range results {
		if e := decodeErrs[i]; e != nil {
			results[i] = models.BatchResult{Index: i, Status: statusOf[e.Code], Error: e}
		}
		r := results[i]
		out.Results[i] = batchResult{Index: r.Index, ID: r.ID, Status: r.Status, Transaction: r.Transaction}
		if r.Error != nil {
			out.Results[i].Error = &errorDetail{Code: r.Error.Code, Message: r.Error.Message, Fields: r.Error.Fields}
		}
		switch r.Status {
		case http.StatusCreated:
			out.Created++
		case http.StatusOK:
			out.Replayed++
		default:
			out.Failed++
		}
	}
	return c.JSON(http.StatusOK, out)
}

// batchFast is a batch decoded in one pass, for the usual case where every item has the right
// shape.
type batchFast struct {
	Transactions []models.TransactionInput `json:"transactions"`
}

// decodeBatch decodes a batch body. A well-formed batch is decoded in one pass; only when that
// fails is the body decoded again item by item (as json.RawMessage, then each on its own), so that
// a malformed item gets its own error and the rest still go in. The single pass halves the JSON
// work of a large batch, which was the server's biggest cost in docs/benchmarks.md.
func decodeBatch(c echo.Context) ([]models.TransactionInput, map[int]*models.Error, error) {
	r := c.Request()
	if r.ContentLength > maxBody {
		return nil, nil, models.Errorf(models.ETOOLARGE, "request body is over %d bytes", maxBody)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(c.Response(), r.Body, maxBody)); err != nil {
		return nil, nil, jsonError(err)
	}
	body := buf.Bytes()
	var fast batchFast
	if err := json.Unmarshal(body, &fast); err == nil {
		if err := checkBatchSize(len(fast.Transactions), fast.Transactions == nil); err != nil {
			return nil, nil, err
		}
		return fast.Transactions, nil, nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in batchInput
	if err := decodeJSON(c, &in); err != nil {
		return nil, nil, err
	}
	if err := checkBatchSize(len(in.Transactions), in.Transactions == nil); err != nil {
		return nil, nil, err
	}
	items := make([]models.TransactionInput, len(in.Transactions))
	decodeErrs := map[int]*models.Error{}
	for i, raw := range in.Transactions {
		if err := json.Unmarshal(raw, &items[i]); err != nil {
			e, _ := jsonError(err).(*models.Error)
			decodeErrs[i] = e
			items[i] = models.TransactionInput{}
		}
	}
	return items, decodeErrs, nil
}

func checkBatchSize(n int, missing bool) error {
	if missing {
		return &models.Error{Code: models.EINVALID, Message: "invalid batch",
			Fields: map[string]string{"transactions": "is required: an array of transactions"}}
	}
	if n > models.MaxBatch {
		return models.Errorf(models.ETOOLARGE, "a batch holds at most %d transactions, this one has %d", models.MaxBatch, n)
	}
	return nil
}
